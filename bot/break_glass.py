"""Who runs the break-glass CLI, from something the caller cannot simply type.

- The OS account running the command: the real uid (``os.getuid``, not ``$USER`` or any
  other variable), its name from the password database, mapped to a Slack user id by the
  config's ``[break_glass] users``. ``--as`` only confirms it: a different id is refused.
- An SSH signature of one approval decision: ``ssh-keygen -Y sign`` by the approver (on any
  machine) and ``ssh-keygen -Y verify`` here against the config's ``allowed_signers`` file,
  the mechanism git uses for signed commits. The signed text names the approval, its
  operation, the decision and the plan's hash, so a signature is good for that one decision
  of that exact plan.
- User groups from the config's ``[break_glass] groups``, else Slack's API when it answers;
  never from the caller's environment.

What this rests on (README, "Break-glass CLI"): the OS accounts of the machine, the config
file and allowed_signers being writable only by their administrators, and the approvers'
private keys. Both files are read through the descriptor their owner and mode were checked
on, and refused when the caller owns them (the caller picks the config with
$ROLLBACK_BOT_CONFIG: a copy of their own could say they are the approver) or when their
group or everyone may write them. Anyone who can edit those files, act as root, or who
holds the database credentials can act outside the bot; the audit log then shows no
approval.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError, PermissionDenied
from bot.settings import BreakGlass, Config, parse_config
from bot.store.records import Approval

NAMESPACE = "rollback-bot-approval"  # ssh-keygen -n: a signature for nothing else
_USER_ID = re.compile(r"^[UW][A-Z0-9_]{2,}$")
_GOOD = re.compile(r'^Good "[^"]+" signature for (\S+) with (\S+) key (\S+)', re.M)


@dataclass(frozen=True)
class Identity:
    user: str  # the Slack user id the bot records
    how: str  # what established it, for the audit log


def os_account() -> tuple[str, int]:
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:
        raise ConfigError(f"The OS account with uid {uid} has no name: who are you?") from None


def load_config(path: Path) -> Config:
    """The break-glass CLI's config: it says who is who, so it is read only from a file its
    administrators alone can change (see ``administered``)."""
    data = administered(path, "the config file (it says who is who)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the config file is not UTF-8 text.") from None
    return parse_config(path, text)


def caller(config: Path, claimed: str | None) -> Identity:
    """The Slack user the OS account running this command is; ``claimed`` (--as) must match.
    The mapping is read afresh from ``config`` as ``load_config`` reads it."""
    users = load_config(config).break_glass.users
    name, uid = os_account()
    user = users.get(name)
    if user is None:
        raise PermissionDenied(
            f"The OS account {name} (uid {uid}) is not in the config's [break_glass] users,"
            " so the break-glass CLI cannot tell who you are.",
            f'An administrator of the config adds {name} = "U012ABCDEF" (your Slack user id)'
            " to [break_glass] users. A second person can also approve with an SSH"
            " signature (--ssh-key or --signature).",
        )
    if claimed and claimed != user:
        raise PermissionDenied(
            f"--as {claimed} does not match who you are: the OS account {name} is {user}"
            " in [break_glass] users.",
            "Leave out --as. Another person acts from their own OS account, or approves with"
            " their SSH key (--ssh-key KEY or --signature FILE).",
        )
    return Identity(user, f"OS account {name} (uid {uid})")


def approval_message(approval: Approval, approve: bool) -> bytes:
    """The exact text an approver signs: one decision on one plan."""
    return (
        "rollback-bot approval\n"
        f"approval: {approval.id}\n"
        f"operation: {approval.operation_id}\n"
        f"decision: {'approve' if approve else 'deny'}\n"
        f"plan-sha256: {approval.plan_hash}\n"
    ).encode()


def sign(key: Path, message: bytes) -> bytes:
    """``ssh-keygen -Y sign`` with the approver's own key (it may ask for its passphrase)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "approval.txt"
        data.write_bytes(message)
        done = subprocess.run(
            ["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(data)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise PermissionDenied(f"ssh-keygen could not sign with {key}: {done.stderr.strip()}")
        return Path(f"{data}.sig").read_bytes()


def signer(break_glass: BreakGlass, message: bytes, signature: bytes) -> Identity:
    """The Slack user whose key in allowed_signers made ``signature`` over ``message``."""
    allowed = _allowed_signers(break_glass)
    with tempfile.TemporaryDirectory() as tmp:
        # ssh-keygen reads the bytes that were checked, not the path again.
        signers = Path(tmp) / "allowed_signers"
        signers.write_bytes(administered(allowed, "the allowed signers (anyone could add a key)"))
        sig = Path(tmp) / "approval.sig"
        sig.write_bytes(signature)
        ok, found = _ssh_keygen("-Y", "find-principals", "-s", str(sig), "-f", str(signers))
        for principal in found.split() if ok else []:
            ok, said = _ssh_keygen(
                "-Y", "verify", "-f", str(signers), "-I", principal, "-n", NAMESPACE,
                "-s", str(sig),
                stdin=message,
            )  # fmt: skip
            good = _GOOD.search(said)
            if ok and good:
                user = _slack_user(break_glass, principal)
                return Identity(user, f"SSH signature by {principal} ({good[2]} {good[3]})")
    raise PermissionDenied(
        "The SSH signature does not verify: it is not a signature of this decision on this"
        f" plan by a key in {allowed}.",
        "Sign the text `rollback-bot cli approve APPROVAL_ID --message` prints (with --deny"
        f" for a denial): ssh-keygen -Y sign -f YOUR_KEY -n {NAMESPACE} FILE.",
    )


def _allowed_signers(break_glass: BreakGlass) -> Path:
    path = break_glass.allowed_signers
    if path is None:
        raise ConfigError(
            "The config has no [break_glass] allowed_signers file, so SSH signatures cannot"
            " be checked."
        )
    return path


def administered(path: Path, what: str) -> bytes:
    """The bytes of a file only its administrators can change: not writable by its group or
    everyone, and not owned by the caller (root excepted: root administers the machine).
    Owner and mode are checked on the descriptor the bytes are read from, so the file cannot
    be swapped between the check and the read."""
    try:
        with open(path, "rb") as file:
            status = os.fstat(file.fileno())
            data = file.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror}).") from None
    if status.st_mode & 0o022:
        raise ConfigError(
            f"{path} is writable by its group or by everyone: {what}."
            " chmod go-w it (only its administrators may change who can approve)."
        )
    uid = os.getuid()
    if uid != 0 and status.st_uid == uid:
        raise ConfigError(
            f"{path} is owned by you (uid {uid}): {what}, so you could change who you are."
            " Use the file your administrators keep (owned by root or by the bot's account)."
        )
    return data


def _ssh_keygen(*args: str, stdin: bytes | None = None) -> tuple[bool, str]:
    """(exit code 0, what it printed): verify says "Good ... signature" on stdout or stderr
    depending on the OpenSSH version."""
    try:
        done = subprocess.run(
            ["ssh-keygen", *args], input=stdin or b"", capture_output=True, timeout=30
        )
    except FileNotFoundError:
        raise ConfigError("ssh-keygen is not installed (OpenSSH 8.2 or later).") from None
    return done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")


def _slack_user(break_glass: BreakGlass, principal: str) -> str:
    if _USER_ID.match(principal):
        return principal
    user = break_glass.users.get(principal)
    if user is None:
        raise ConfigError(
            f"allowed_signers names {principal}, which is neither a Slack user id nor a name"
            " in [break_glass] users."
        )
    return user
