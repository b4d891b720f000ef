"""The sandbox page behaves like Slack's client: the page never grows, the channel and the
thread panes scroll on their own, the composer and "Acting as" stay in view whatever the
length; the bot's emoji shortcodes show as emoji; mrkdwn is rendered as Slack renders it
and what the data says is never live HTML (issue 19, item 8)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.helpers import shot, type_command

VIEWPORT = {"width": 1440, "height": 900}


def inside_viewport(page, label: str) -> None:
    box = page.get_by_label(label).bounding_box()
    assert box is not None, f"{label} is not shown"
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], (label, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], (label, box)


def at_bottom(state: dict, pane: str) -> None:
    """Each pane follows its newest message, as Slack does."""
    assert state[pane]["top"] + state[pane]["visible"] >= state[pane]["height"] - 2, state


def scrolled_up(page, pane: str, top: int) -> None:
    page.wait_for_function(
        "([id, limit]) => document.getElementById(id).scrollTop < limit", arg=[pane, top - 500]
    )


def scroll_state(page) -> dict:
    return page.evaluate(
        """() => {
          const pane = (id) => { const e = document.getElementById(id);
            return { top: e.scrollTop, height: e.scrollHeight, visible: e.clientHeight }; };
          return { page: document.documentElement.scrollHeight, window: window.scrollY,
                   inner: window.innerHeight, channel: pane("messages"),
                   thread: pane("thread-messages") };
        }"""
    )


def test_panes_scroll_on_their_own_and_the_composer_stays_in_view(page):
    messages = page.get_by_role("log", name="messages")
    # A tall card (the status with its diagnosis), then 30 messages of our own.
    type_command(page, "/rollback status --env staging")
    expect(messages).to_contain_text("Only visible to you")
    for n in range(1, 31):
        type_command(page, f"message {n}")
        expect(messages).to_contain_text(f"message {n}")
    at_bottom(scroll_state(page), "channel")  # the channel follows its newest message
    # Slack's hover action on the first message opens its thread; 30 replies in it.
    first = messages.locator(".msg", has_text="message 1").first
    first.hover()
    first.get_by_role("button", name="Reply in thread").click()
    thread = page.get_by_role("complementary", name="thread")
    expect(thread).to_be_visible()
    for n in range(1, 31):
        type_command(page, f"reply {n}", box="reply box")
        expect(thread).to_contain_text(f"reply {n}")
    expect(messages.locator(".replies").first).to_have_text("30 replies")
    shot(page, "layout-30-messages-thread-open")

    state = scroll_state(page)
    # The page is the viewport, never more: only the panes scroll.
    assert state["page"] <= state["inner"] and state["window"] == 0, state
    for pane in ("channel", "thread"):
        assert state[pane]["height"] > state[pane]["visible"], (pane, state)
    at_bottom(state, "thread")
    thread_top = state["thread"]["top"]
    for label in ("message box", "reply box", "Acting as"):
        inside_viewport(page, label)

    # The mouse wheel over the channel scrolls the channel only (down to its end, then up).
    page.mouse.move(700, 300)
    page.mouse.wheel(0, 20_000)
    page.wait_for_function(
        "() => { const e = document.getElementById('messages');"
        " return e.scrollTop + e.clientHeight >= e.scrollHeight - 2; }"
    )
    state = scroll_state(page)
    assert state["thread"]["top"] == thread_top, state
    page.mouse.wheel(0, -2000)
    scrolled_up(page, "messages", state["channel"]["top"])
    after = scroll_state(page)
    assert after["thread"]["top"] == state["thread"]["top"], after
    assert after["window"] == 0, after
    # ... and over the thread, the thread only.
    thread_box = thread.bounding_box()
    page.mouse.move(thread_box["x"] + 100, thread_box["y"] + 200)
    page.mouse.wheel(0, -2000)
    scrolled_up(page, "thread-messages", state["thread"]["top"])
    last = scroll_state(page)
    assert last["channel"]["top"] == after["channel"]["top"], last
    assert last["window"] == 0, last
    for label in ("message box", "reply box", "Acting as"):
        inside_viewport(page, label)


def test_emoji_favicon_and_mrkdwn_as_slack_shows_them(page, sandbox):
    # The favicon is linked and served.
    icon = page.locator("link[rel=icon]").get_attribute("href")
    answer = page.request.get(sandbox.url() + icon.lstrip("/"))
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/")

    render = """(text) => { const box = mrkdwn(text); document.body.append(box);
        const out = { html: box.innerHTML, text: box.textContent,
          tags: [...box.querySelectorAll("*")].map((n) => n.tagName.toLowerCase()),
          hrefs: [...box.querySelectorAll("a")].map((a) => a.getAttribute("href")) };
        box.remove(); return out; }"""
    shown = page.evaluate(render, ":wastebasket: Delete :white_check_mark: :warning:")
    assert shown["text"] == "🗑️ Delete ✅ ⚠️", shown

    shown = page.evaluate(
        render,
        "*Approval needed* for `DROP TABLE &lt;x&gt;` by <@U_BOB> in <#C_ENG|engineering>,"
        " see <https://example.com/runbook|the runbook>\n```SELECT '<b>' &amp; 1;```",
    )
    assert {"b", "code", "pre", "a"} <= set(shown["tags"]), shown
    assert "DROP TABLE <x>" in shown["text"] and "SELECT '<b>' & 1;" in shown["text"], shown
    assert "@bob" in shown["text"] and "#engineering" in shown["text"], shown
    assert shown["hrefs"] == ["https://example.com/runbook"], shown

    # Data is never live HTML: markup, event handlers and script links stay text.
    hostile = (
        "<img src=x onerror=alert(1)> &lt;script&gt;alert(2)&lt;/script&gt;"
        " <javascript:alert(3)|click me> *<b onclick=x>bold</b>* `<i>`"
        " ```</code></pre><img src=y>``` \u0000 0 \u0000"
    )
    shown = page.evaluate(render, hostile)
    assert not {"img", "script", "i"} & set(shown["tags"]), shown
    assert shown["hrefs"] == [], shown
    assert "onerror" not in shown["html"].replace("onerror=alert(1)", ""), shown
    assert "<script>alert(2)</script>" in shown["text"], shown

    # What a person types is shown as typed, as Slack's client escapes it.
    type_command(page, "<img src=x onerror=alert(1)> & <b>not bold</b>")
    messages = page.get_by_role("log", name="messages")
    expect(messages).to_contain_text("<img src=x onerror=alert(1)> & <b>not bold</b>")
    assert messages.locator("img").count() == 0
