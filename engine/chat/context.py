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
    dropped = 0
    while True:
        candidate = head + body
        n_tokens = count_tokens(candidate)
        if n_tokens <= (budget if not dropped else budget * drop_to):
            return FittedPrompt(candidate, n_tokens, dropped)
        turn_end = _end_of_first_turn(body)
        if turn_end is None and n_tokens <= budget:  # only the new message is left: it fits
            return FittedPrompt(candidate, n_tokens, dropped)
        if turn_end is None:
            raise ContextOverflowError(
                f"the message needs {n_tokens} tokens with the system prompt, but only {budget} "
                f"of the {n_ctx}-token context window are free for the prompt. Shorten it or "
                "raise model.n_ctx."
            )
        body = body[turn_end:]
        dropped += turn_end


def _end_of_first_turn(body: list[Message]) -> int | None:
    """Index after the first turn, or None when only the newest user message is left."""
    for index in range(1, len(body)):
        if body[index]["role"] == "user":
            return index
    return None
