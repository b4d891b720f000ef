"""A restored RDS instance's address in the sandbox: a listener on the instance's own
loopback address (bot.sandbox.aws.resolve gives each RDS endpoint name one) and the
database's port, which forwards every connection to the sandbox's one PostgreSQL server with
the database name rewritten to the restored copy's.

Why a rewrite and not a second server: the bot connects to a restored instance with the
environment's URL on the new endpoint (bot/runbooks/pitr/verify.restored_url keeps the
user, password and database name, as on RDS, where a restore keeps them), so what tells
the restored database from the current one is the address alone. Only the startup packet
is read (PostgreSQL protocol 3: SSLRequest and GSSENCRequest answered "N", so the client
goes on in plain text as it does with the server itself; a CancelRequest passed on as it
is); everything after it, authentication included, is relayed byte for byte.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000  # PostgreSQL itself refuses a startup packet over 10,000 bytes


class DatabaseProxy:
    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], renames: dict):
        self.upstream = upstream
        self.renames = dict(renames)  # database name asked for -> database connected to
        self._server = socket.create_server(listen)
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name=f"pg-proxy-{listen[0]}", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        # OSError only: a client or the server going away ends this connection, nothing else.
        try:
            with client:
                packet = self._startup(client)
                if packet is None:
                    return
                with socket.create_connection(self.upstream, timeout=10) as server:
                    server.settimeout(None)
                    server.sendall(packet)
                    if _code(packet) == CANCEL_REQUEST:
                        return
                    _relay(client, server)
        except (OSError, ValueError):
            return

    def _startup(self, client: socket.socket) -> bytes | None:
        """The client's startup packet, its database renamed; None if it hung up."""
        while True:
            head = _read(client, 8)
            if head is None:
                return None
            length, code = struct.unpack("!ii", head)
            if not 8 <= length <= MAX_STARTUP:
                raise ValueError("not a PostgreSQL startup packet")
            body = _read(client, length - 8) or b""
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                client.sendall(b"N")  # no encryption here: the client carries on in plain text
                continue
            if code >> 16 != 3:  # CancelRequest, or a protocol we do not rewrite
                return head + body
            return _packet(code, self._renamed(body))

    def _renamed(self, body: bytes) -> bytes:
        fields = body.rstrip(b"\0").split(b"\0")
        params = dict(zip(fields[0::2], fields[1::2], strict=True))
        database = params.get(b"database") or params.get(b"user") or b""
        params[b"database"] = self.renames.get(database.decode(), database.decode()).encode()
        return b"".join(k + b"\0" + v + b"\0" for k, v in params.items()) + b"\0"


def _packet(code: int, body: bytes) -> bytes:
    return struct.pack("!ii", 8 + len(body), code) + body


def _code(packet: bytes) -> int:
    return struct.unpack("!i", packet[4:8])[0]


def _read(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _relay(client: socket.socket, server: socket.socket) -> None:
    """Both directions until either side closes."""
    back = threading.Thread(target=_pipe, args=(server, client), daemon=True)
    back.start()
    _pipe(client, server)
    back.join()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    # Whichever side ended, the other learns it: a half-open relay would hang its peer.
    for sock in (sink, source):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
