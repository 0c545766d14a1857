"""Context-window fitting on tables of conversations (a word count stands in for tokens here;
the real tokenizer is exercised in test_engine_llama.py)."""

from __future__ import annotations

import pytest

from engine.chat.context import fit_to_context
from engine.errors import ContextOverflowError


def words(messages) -> int:
    return sum(len(m["content"].split()) for m in messages)


def conv(*pairs: tuple[str, int]) -> list[dict]:
    return [{"role": role, "content": " ".join(["w"] * n)} for role, n in pairs]


@pytest.mark.parametrize(
    ("messages", "n_ctx", "reply", "kept_roles", "dropped"),
    [
        (conv(("system", 5), ("user", 5)), 100, 10, ["system", "user"], 0),
        (conv(("system", 5), ("user", 30), ("assistant", 30), ("user", 5)), 60, 10,
         ["system", "user"], 2),
        (conv(("user", 30), ("assistant", 30), ("user", 10), ("assistant", 10), ("user", 5)), 60, 20,
         ["user", "assistant", "user"], 2),
        # a turn with two assistant messages goes as a whole
        (conv(("system", 2), ("user", 20), ("assistant", 20), ("assistant", 20), ("user", 3)), 40, 10,
         ["system", "user"], 3),
        # max_tokens larger than half the window is capped at half
        (conv(("system", 2), ("user", 3)), 20, 1000, ["system", "user"], 0),
    ],
)
def test_oldest_turns_dropped_system_kept(messages, n_ctx, reply, kept_roles, dropped) -> None:
    fitted = fit_to_context(messages, words, n_ctx, reply)
    assert [m["role"] for m in fitted.messages] == kept_roles
    assert fitted.dropped_messages == dropped
    assert fitted.messages[-1] == messages[-1]
    assert fitted.n_tokens == words(fitted.messages)


def test_message_that_cannot_fit_raises() -> None:
    with pytest.raises(ContextOverflowError, match="raise model.n_ctx"):
        fit_to_context(conv(("system", 5), ("user", 100)), words, 64, 16)


def test_a_full_window_drops_to_half_when_asked() -> None:
    from engine.chat.context import fit_to_context

    turns = [{"role": "system", "content": "s"}]
    for i in range(10):
        turns += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    turns.append({"role": "user", "content": "new"})
    count = lambda messages: 10 * len(messages)  # noqa: E731 - ten tokens a message
    least = fit_to_context(turns, count, n_ctx=200, reply_budget=20)
    half = fit_to_context(turns, count, n_ctx=200, reply_budget=20, drop_to=0.5)
    assert least.n_tokens <= 180 and least.dropped_messages == 4  # 22 messages -> 18
    assert half.n_tokens <= 90 and half.dropped_messages == 14  # 22 messages -> 8
    assert half.messages[0]["role"] == "system" and half.messages[-1]["content"] == "new"


def drop_one_turn_at_a_time(messages, count, n_ctx, reply_budget, drop_to):
    """The fitting rule done the slow way: drop the oldest turn until the prompt fits."""
    budget = n_ctx - min(reply_budget, n_ctx // 2)
    head = messages[:1] if messages[0]["role"] == "system" else []
    body = messages[len(head):]
    dropped = 0
    while True:
        n = count(head + body)
        if n <= (budget if not dropped else budget * drop_to):
            return n, dropped
        later = [i for i in range(1, len(body)) if body[i]["role"] == "user"]
        if not later:
            return (n, dropped) if n <= budget else None
        body = body[later[0]:]
        dropped += later[0]


@pytest.mark.parametrize("seed", range(30))
def test_bisection_drops_what_one_turn_at_a_time_would(seed: int) -> None:
    """The fewest turns are found with a handful of counts (each renders and tokenizes the whole
    prompt), and they are the turns dropping one at a time would leave."""
    import random

    rng = random.Random(seed)
    roles = ["system"] if rng.random() < 0.5 else []
    for _ in range(rng.randint(0, 60)):
        roles += ["user"] + ["assistant"] * rng.choice([1, 1, 2])
    messages = conv(*[(role, rng.randint(1, 40)) for role in roles], ("user", rng.randint(1, 60)))
    n_ctx, reply, drop_to = rng.choice([64, 256, 1024]), rng.choice([16, 100]), rng.choice([1.0, 0.5])
    calls = []

    def counted(candidate):
        calls.append(len(candidate))
        return words(candidate)

    expected = drop_one_turn_at_a_time(messages, words, n_ctx, reply, drop_to)
    if expected is None:
        with pytest.raises(ContextOverflowError):
            fit_to_context(messages, counted, n_ctx, reply, drop_to)
        return
    fitted = fit_to_context(messages, counted, n_ctx, reply, drop_to)
    assert (fitted.n_tokens, fitted.dropped_messages) == expected
    assert len(calls) <= 2 + (len(messages) // 2).bit_length()
