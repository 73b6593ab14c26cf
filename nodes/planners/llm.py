"""The LLM planner behind the Planner interface: structured output through tools/llm.py.

The first request carries the rules, the catalog for the goal's region, the goal as data,
the retrieved past plans and runbook snippets (nodes/prompts.py); each retry adds the
rejected answer and the problems validation found in it, so the model corrects instead of
starting over.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.design import DesignProposal
from memory.plans import Recalled
from nodes.planners import Attempt, Proposal
from nodes.prompts import design_prompt, feedback_prompt
from schemas.goal import GoalStatement
from tools.llm import LlmClient

MAX_ATTEMPTS = 3
"""The first try and at most two retries with the clash explained (the issue's contract)."""


class LlmPlanner:
    name = "llm"
    max_attempts = MAX_ATTEMPTS
    uses_memory = True

    def __init__(self, client: LlmClient) -> None:
        self._client = client

    @property
    def model(self) -> str | None:
        return self._client.model

    async def propose(
        self, goal: GoalStatement, past: Sequence[Recalled], rejected: Sequence[Attempt]
    ) -> Proposal:
        prompt = design_prompt(goal, past)
        prompt += [feedback_prompt(a.number, a.problems, a.answer) for a in rejected]
        reply = await self._client.structured(DesignProposal, prompt)
        return Proposal(
            reply.value,
            error=reply.error,
            raw=reply.raw,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
        )
