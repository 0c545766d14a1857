"""Fit a conversation into the context window by dropping its oldest turns.

The budget is ``n_ctx - reply_budget`` tokens. The system prompt is never dropped, nor the newest
user message; whole turns (a user message and the replies after it) go oldest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.chat.backend import Message
from engine.errors import ContextOverflowError


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[Message]
    """What is sent: system prompt (if any) and the newest turns that fit."""
    n_tokens: int
    """Prompt tokens of ``messages`` as the chat template renders them."""
    dropped_messages: int
    """How many of the oldest messages were left out."""


def fit_to_context(
    messages: list[Message],
    count_tokens: Callable[[list[Message]], int],
    n_ctx: int,
    reply_budget: int,
    drop_to: float = 1.0,
) -> FittedPrompt:
    """Drop the oldest turns until the prompt fits ``n_ctx - reply_budget`` tokens.

    Once something must go, turns are dropped until the prompt fits ``drop_to`` of that budget:
    1.0 drops as few as fit (a backend that slides its KV cache keeps the rest in place); 0.5
    drops to about half the window at once (a backend that must evaluate the prompt again after
    every drop then does so once every several turns, not every turn).

    Args:
        messages: the whole conversation, optionally starting with a system message, ending with
            the new user message.
        count_tokens: tokens of a message list as rendered by the model's chat template.
        n_ctx: context window, tokens.
        reply_budget: tokens kept free for the reply (``max_tokens``, capped at half of n_ctx so a
            large ``max_tokens`` cannot leave no room for the conversation).

    Raises:
        ContextOverflowError: the system prompt and the newest user message alone do not fit.
    """
    budget = n_ctx - min(reply_budget, n_ctx // 2)
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    body = messages[len(head):]
    # where each turn starts: dropping up to starts[i] leaves the newest turns; the last start is
    # the newest user message alone
    starts = [0] + [index for index in range(1, len(body)) if body[index]["role"] == "user"]

    def fitted(turns_dropped: int) -> FittedPrompt:
        candidate = head + body[starts[turns_dropped]:]
        return FittedPrompt(candidate, count_tokens(candidate), starts[turns_dropped])

    whole = fitted(0)
    if whole.n_tokens <= budget:
        return whole
    # Fewer messages never render to more tokens, so the fewest turns to drop are found by
    # bisection: a 100-message chat is counted 7 times, not once per dropped turn (each count
    # renders the template and tokenizes the whole prompt: 0.3 s before the reply at turn 51
    # on this machine, seconds on a Pi's cores; bench/smooth_stream.py).
    last = len(starts) - 1  # dropping this many turns leaves the newest message alone
    alone = fitted(last) if last else whole
    if alone.n_tokens > budget:
        raise ContextOverflowError(
            f"the message needs {alone.n_tokens} tokens with the system prompt, but only {budget} "
            f"of the {n_ctx}-token context window are free for the prompt. Shorten it or "
            "raise model.n_ctx."
        )
    target = budget * drop_to
    best = alone  # it fits the budget; when not drop_to of it too, nothing better exists
    low, high = 1, last - 1
    while low <= high and best.n_tokens <= target:
        middle = (low + high) // 2
        attempt = fitted(middle)
        if attempt.n_tokens <= target:
            best, high = attempt, middle - 1
        else:
            low = middle + 1
    return best
