"""The LLM planner behind the Planner interface: structured output through tools/llm.py.

The first request carries the rules, the catalog for the goal's region, the goal as data,
the retrieved past plans and runbook snippets (nodes/prompts.py); each retry adds the
rejected answer (as the model's own turn: the server's prompt cache still holds it) and the
problems validation found in it, so the model corrects instead of starting over.

Two knobs exist for small local models, both measured in bench/atlas_llm.py:
- `draft`: the catalog planner's design goes into the prompt and the model revises it (the
  hybrid), instead of designing from nothing;
- `prompt_budget_chars`: above it, only the catalog types the catalog planner would use are
  described in full, the rest by name (the prompt of a 0.5B model on two CPU cores costs
  about a second per 30 tokens).

The schema sent to the server names the catalog's types as an enum, so a server that
constrains its output to the schema (llama.cpp, vLLM, Ollama) cannot invent a type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog import CATALOG
from catalog.design import DesignProposal
from catalog.planner import design_for
from graph.planner import Attempt, Proposal
from memory.plans import Recalled
from nodes.prompts import design_prompt, feedback_prompt
from schemas.goal import GoalStatement
from tools.llm import LlmClient, wire_schema

MAX_ATTEMPTS = 3
"""The first try and at most two retries with the clash explained (the issue's contract)."""


class LlmPlanner:
    name = "llm"
    max_attempts = MAX_ATTEMPTS
    uses_memory = True

    def __init__(
        self, client: LlmClient, *, draft: bool = False, prompt_budget_chars: int | None = None
    ) -> None:
        self._client = client
        self._draft = draft
        self._budget = prompt_budget_chars

    @property
    def model(self) -> str | None:
        return self._client.model

    async def propose(
        self, goal: GoalStatement, past: Sequence[Recalled], rejected: Sequence[Attempt]
    ) -> Proposal:
        catalog_design = design_for(goal)
        prompt = design_prompt(
            goal,
            past,
            draft=catalog_design if self._draft else None,
            focus={c.type for c in catalog_design.components} if catalog_design else None,
            budget_chars=self._budget,
        )
        prompt += [
            turn for a in rejected for turn in feedback_prompt(a.number, a.problems, a.answer)
        ]
        reply = await self._client.structured(DesignProposal, prompt, wire=design_wire_schema())
        return Proposal(
            reply.value,
            error=reply.error,
            raw=reply.raw,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            method=reply.method.value,
        )


def design_wire_schema() -> dict[str, Any]:
    """DesignProposal's wire schema with `components[].type` limited to the catalog."""
    schema = wire_schema(DesignProposal)
    component = schema["properties"]["components"]["items"]
    component["properties"]["type"] = {"type": "string", "enum": sorted(CATALOG)}
    return schema
