"""Atlas, the architect: GoalStatement -> PlanSpec, or DesignBlocked with what to change.

The design node asks a planner (graph/context.py `CrewContext.planner`: the catalog planner,
or the LLM planner when one is configured) for a DesignProposal, builds the PlanSpec around
it (catalog/design.py: full parameters, forecast, tags, diagram, risks) and validates it
(catalog/validate.py). A planner that learns from feedback gets the problems explained and
tries again, at most twice more; then, or when the goal contradicts itself, the node emits a
DesignBlocked with one reason per clash and a concrete suggestion.

Memory: a planner that uses it (the LLM planner) is first given past plans of similar goals
with how their runs ended, then runbook sections (`CrewContext.plan_memory`: the pgvector
memory, or the audit log without pgvector); their ids go into provenance.retrieved. An
embeddings endpoint that fails costs the design that context, not the run.

How an LLM *failure* surfaces (HTTP 5xx, timeout, unreachable endpoint, bad key): the node
lets the LlmError / ConfigurationError propagate. The worker records it on the run
(`crew show` prints it), backs off exponentially (capped at 5 minutes) and runs the design
step again, up to CREW_RUN_MAX_ATTEMPTS tries (then the run ends BLOCKED with the error, and
a human may cancel it sooner); nothing was checkpointed, so nothing is half-done. A
DesignBlocked would be the wrong answer: it is addressed to the goal's author and says what
to change in the *goal*, and it is final, while an outage is transient and an operator's to
fix; a goal should not be lost because the model endpoint was down for a minute. `atlas plan`
prints the same error and exits 1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from langgraph.runtime import Runtime

from catalog.cost import forecast_lines
from catalog.design import assemble_plan
from catalog.gaps import UnsupportedAsks, gap_problems, gap_risks, uncovered_problems
from catalog.planner import design_for
from catalog.reading import Reading, ReadingAids, read_goal
from catalog.trace import trace_requirements
from catalog.validate import (
    Problem,
    ProblemCode,
    budget_problem,
    check_goal,
    check_parameter_rules,
    parse_components,
    validate_components,
    validate_plan,
)
from graph.context import CrewContext
from graph.planner import Attempt, Planner, Proposal
from graph.state import RunState, transition
from memory.plans import GoalMemory, NoPlanMemory, PlanMemory, Recalled, RunbookMemory
from nodes.planners.catalog import propose_from_catalog
from nodes.timing import StepTimer
from schemas.errors import EmbeddingError, ToolError, ToolNotFoundError
from schemas.events import EventType
from schemas.goal import GoalStatement
from schemas.plan import (
    BlockReason,
    DesignBlocked,
    PlanSpec,
    Provenance,
    RejectedAnswer,
    Requirement,
)
from schemas.stack import RunPurpose
from schemas.states import ConductorState
from tools.mermaid import render_svg

logger = logging.getLogger(__name__)

ACTOR = "atlas"
#: How much of a rejected answer provenance keeps (the whole answer went back to the model).
MAX_REJECTED_ECHO = 2_000


def plan_goal(
    goal: GoalStatement,
    *,
    goal_id: str,
    plan_id: str,
    revision: int = 1,
    aids: ReadingAids | None = None,
    unsupported_asks: UnsupportedAsks = "block",
) -> PlanSpec | DesignBlocked:
    """The catalog planner's design for `goal`, validated: deterministic, no I/O, no SVG.

    `aids` lend the reader a matcher by meaning (tools/ask_matcher.py); without them the goal
    is read by rules alone. Never raises for a valid GoalStatement.
    """
    reading = read_goal(goal, aids)
    problems = _goal_problems(goal, reading)
    if problems:
        return _blocked(goal_id, [*problems, *_budget_estimate(goal, reading)], attempts=1,
                        requirements=_would_be(goal, reading))  # fmt: skip
    provenance = Provenance(planner="catalog")
    plan, problems = _evaluate(
        goal,
        propose_from_catalog(goal, reading),
        goal_id,
        plan_id,
        revision,
        provenance,
        reading,
    )
    return _finish(goal, goal_id, reading, plan, problems, 1, unsupported_asks)


def _goal_problems(goal: GoalStatement, reading: Reading) -> list[Problem]:
    """The goal's own clashes; 'nothing to build' only when nothing at all was read."""
    problems = check_goal(goal)
    if any(a.kind.value == "capability" for a in reading.asks):
        problems = [p for p in problems if p.code is not ProblemCode.NOTHING_TO_BUILD]
    return problems


def _finish(
    goal: GoalStatement,
    goal_id: str,
    reading: Reading,
    plan: PlanSpec | None,
    problems: Sequence[Problem],
    attempts: int,
    unsupported_asks: UnsupportedAsks,
    *,
    provenance: Provenance | None = None,
) -> PlanSpec | DesignBlocked:
    """The plan, unless an ask it cannot meet blocks it (org policy unsupported_asks).

    A blocked design keeps the `provenance` of the planner that tried (tokens, rejected
    answers): a block costs tokens too."""
    if plan is None:
        requirements = _would_be(goal, reading)
        # Everything at once: the clashes, and the asks no design here would meet.
        gaps = gap_problems(requirements)
        reasons = [*gaps, *problems] if _nothing(problems) else [*problems, *gaps]
        return _blocked(
            goal_id, reasons, attempts=attempts, requirements=requirements, provenance=provenance
        )
    gaps = gap_problems(plan.requirements)
    if gaps and unsupported_asks == "block":
        return _blocked(
            goal_id,
            gaps,
            attempts=attempts,
            requirements=plan.requirements,
            provenance=plan.provenance,
        )
    if gaps:
        plan = plan.model_copy(update={"risks": [*plan.risks, *gap_risks(plan.requirements)]})
    return plan


def _would_be(goal: GoalStatement, reading: Reading) -> list[Requirement]:
    """The trace of the catalog planner's design for a blocked goal: what a design would
    meet once the blocking reasons are resolved (nothing, when there is nothing to design)."""
    design = design_for(goal, reading)
    components = design.components if design is not None else []
    assumptions = design.assumptions if design is not None else []
    return trace_requirements(goal, reading, components, assumptions=assumptions)


def _nothing(problems: Sequence[Problem]) -> bool:
    return all(p.code is ProblemCode.BAD_REPLY for p in problems)


async def design_goal(
    goal: GoalStatement,
    *,
    planner: Planner,
    goal_id: str,
    plan_id: str,
    revision: int = 1,
    memory: PlanMemory | None = None,
    run_id: str | None = None,
    aids: ReadingAids | None = None,
    unsupported_asks: UnsupportedAsks = "block",
) -> PlanSpec | DesignBlocked:
    """Ask `planner`, validate, retry with the clash explained; raises only planner errors.

    Every proposal is traced against the goal's asks (read once, here): an ask the catalog
    could meet but the proposal ignores is a problem like any clash, so an LLM cannot drop
    one silently; asks the catalog cannot meet block unless `unsupported_asks` is 'warn'."""
    reading = read_goal(goal, aids)
    problems = _goal_problems(goal, reading)
    if problems:
        # No design can fix a goal that contradicts itself: do not spend tokens on it.
        return _blocked(goal_id, [*problems, *_budget_estimate(goal, reading)], attempts=1,
                        requirements=_would_be(goal, reading))  # fmt: skip
    past = await _recall(goal, memory or NoPlanMemory(), run_id) if planner.uses_memory else []
    rejected: list[Attempt] = []
    prompt_tokens = completion_tokens = 0
    provenance = Provenance(planner=planner.name, model=planner.model)
    for number in range(1, planner.max_attempts + 1):
        proposal = await planner.propose(goal, past, rejected)
        prompt_tokens += proposal.prompt_tokens
        completion_tokens += proposal.completion_tokens
        provenance = Provenance(
            planner=planner.name,
            model=planner.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            attempts=number,
            retrieved=[p.ref for p in past],
            output_method=proposal.method,
            rejected=[_rejected(a) for a in rejected],
        )
        plan, problems = _evaluate(goal, proposal, goal_id, plan_id, revision, provenance, reading)
        if plan is not None and planner.name != "catalog":
            problems = uncovered_problems(plan.requirements)
            if problems and number < planner.max_attempts:
                plan = None
        if plan is not None:
            return _finish(goal, goal_id, reading, plan, [], number, unsupported_asks)
        logger.info(
            "design attempt %d of %d rejected: %s",
            number,
            planner.max_attempts,
            "; ".join(str(p) for p in problems),
            extra={"run_id": run_id, "node": "design"},
        )
        rejected.append(Attempt(number, problems, proposal.raw))
    if planner.name != "catalog":
        problems = [_with_catalog_alternative(goal, p, goal_id) for p in problems]
    spent = provenance.model_copy(update={"rejected": [_rejected(a) for a in rejected]})
    return _finish(
        goal,
        goal_id,
        reading,
        None,
        problems,
        planner.max_attempts,
        unsupported_asks,
        provenance=spent,
    )


def _rejected(attempt: Attempt) -> RejectedAnswer:
    return RejectedAnswer(
        attempt=attempt.number,
        problems=[f"{p.constraint}: {p.why}" for p in attempt.problems][:100],
        answer=attempt.answer[:MAX_REJECTED_ECHO],
    )


async def _recall(goal: GoalStatement, memory: PlanMemory, run_id: str | None) -> list[Recalled]:
    """Past plans, then runbook snippets when the memory holds runbooks.

    An embeddings endpoint that fails costs the design its context, not the run: memory is
    an aid to the planner, and the design is validated the same way without it.
    """
    try:
        recalled: list[Recalled] = [*await memory.recall(goal, exclude_run=run_id)]
        if isinstance(memory, GoalMemory):
            recalled += await memory.recall_goals(goal, exclude_run=run_id)
        if isinstance(memory, RunbookMemory):
            recalled += await memory.recall_runbooks(goal)
    except EmbeddingError as exc:
        logger.warning(
            "designing without memory: %s", exc, extra={"run_id": run_id, "node": "design"}
        )
        return []
    return recalled


def _evaluate(
    goal: GoalStatement,
    proposal: Proposal,
    goal_id: str,
    plan_id: str,
    revision: int,
    provenance: Provenance,
    reading: Reading,
) -> tuple[PlanSpec | None, list[Problem]]:
    if proposal.design is None:
        why = proposal.error or "no design was returned"
        return None, [
            Problem(ProblemCode.BAD_REPLY, "design", why, "answer with a complete DesignProposal")
        ]
    components = proposal.design.components
    problems = validate_components(components)
    if problems:
        # Say everything at once: the parameter rules still apply to what did parse.
        parsed = parse_components(components)
        return None, [*problems, *check_parameter_rules(components, parsed, goal)]
    plan = assemble_plan(
        goal,
        proposal.design,
        goal_id=goal_id,
        plan_id=plan_id,
        revision=revision,
        provenance=provenance,
    )
    problems = validate_plan(plan, goal)
    if problems:
        return None, problems
    requirements = trace_requirements(
        goal, reading, plan.components, assumptions=proposal.design.assumptions
    )
    return plan.model_copy(update={"requirements": requirements}), []


def _budget_estimate(goal: GoalStatement, reading: Reading) -> list[Problem]:
    """Also say whether the budget would do, when the goal is blocked for other reasons."""
    design = design_for(goal, reading)
    if design is None or validate_components(design.components):
        return []
    rps = goal.workload.expected_rps if goal.workload else None
    try:
        lines = forecast_lines(design.components, goal.region, expected_rps=rps)
    except LookupError:  # unpriced region: already a reason of its own
        return []
    over = budget_problem(sum(line.monthly_usd for line in lines), goal.budget.monthly_usd)
    return [over] if over is not None else []


def _with_catalog_alternative(goal: GoalStatement, problem: Problem, goal_id: str) -> Problem:
    """An LLM design over budget: point at the catalog design when it is cheaper."""
    if problem.code is not ProblemCode.OVER_BUDGET:
        return problem
    catalog = plan_goal(goal, goal_id=goal_id, plan_id="estimate")
    if isinstance(catalog, PlanSpec):
        cost = catalog.budget.forecast_monthly_usd
        suggestion = (
            f"{problem.suggestion}, or plan with the catalog planner (--planner catalog, "
            f"CREW_PLANNER=catalog): its design costs ${cost:,.2f}/month, within the brake"
        )
        return Problem(problem.code, problem.constraint, problem.why, suggestion)
    return problem


def _blocked(
    goal_id: str,
    problems: Sequence[Problem],
    *,
    attempts: int,
    requirements: Sequence[Requirement] = (),
    provenance: Provenance | None = None,
) -> DesignBlocked:
    reasons: list[BlockReason] = []
    for p in problems:
        reason = p.as_reason()
        if reason not in reasons:
            reasons.append(reason)
    return DesignBlocked(
        goal_id=goal_id,
        reasons=reasons,
        attempts=attempts,
        requirements=list(requirements),
        provenance=provenance,
    )


async def with_svg(plan: PlanSpec, mmdc: Path | None) -> PlanSpec:
    """The plan with its diagram rendered to SVG, when a Mermaid CLI is configured; a failed
    render is logged and the plan kept (the Mermaid source is the diagram of record)."""
    try:
        svg = await render_svg(plan.diagram, mmdc=mmdc)
    except (ToolError, ToolNotFoundError) as exc:
        logger.warning("diagram not rendered to SVG: %s", exc, extra={"node": "design"})
        return plan
    return plan if svg is None else plan.model_copy(update={"diagram_svg": svg})


def _seed_note(purpose: RunPurpose | None, seed: PlanSpec | None) -> str | None:
    if seed is None:
        return None
    if purpose == RunPurpose.DECOMMISSION:
        return f"decommission: destroy what revision {seed.revision} applied"
    return f"reconcile: the declared configuration of revision {seed.revision}"


async def design(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """PENDING -> IN_PROGRESS with a PlanSpec, or -> BLOCKED with a DesignBlocked."""
    ctx = runtime.context
    timer = StepTimer("design", ctx.clock)
    attempts = state.get("attempts", {}).get("design", 0) + 1
    revision = state.get("revision", 1)
    plan_id = f"{state['run_id']}-r{revision}"
    seed = state.get("seed_plan")
    result: PlanSpec | DesignBlocked
    if seed is not None:
        # A reconcile restores the declared configuration: the applied revision's design, not
        # a new one (a planner may answer differently today).
        result = seed.model_copy(update={"plan_id": plan_id, "revision": revision})
    else:
        result = await design_goal(
            state["goal"],
            planner=ctx.planner,
            memory=ctx.plan_memory,
            goal_id=state["goal_id"],
            plan_id=plan_id,
            revision=revision,
            run_id=state["run_id"],
            aids=ctx.reading,
            unsupported_asks=ctx.unsupported_asks,
        )
    now = ctx.clock()
    if isinstance(result, PlanSpec):
        # The diagram's SVG is rendered by the build, side by side with terraform: it is
        # not on the path to the gate.
        return {
            "plan": result,
            "timings": [timer.done()],
            "attempts": {"design": attempts},
            "conductor_state": ConductorState.IN_PROGRESS,
            "transitions": [
                transition(
                    state,
                    ConductorState.IN_PROGRESS,
                    event=EventType.PLAN_PENDING,
                    actor=ACTOR,
                    at=now,
                    artifact="plan",
                    note=_seed_note(state.get("purpose"), seed),
                )
            ],
        }
    started = transition(
        state, ConductorState.IN_PROGRESS, event=EventType.DESIGN_STARTED, actor=ACTOR, at=now
    )
    blocked = transition(
        {**state, "conductor_state": ConductorState.IN_PROGRESS},
        ConductorState.BLOCKED,
        event=EventType.DESIGN_BLOCKED,
        actor=ACTOR,
        at=now,
        artifact="design_blocked",
        note="; ".join(r.why for r in result.reasons),
        offset=1,
    )
    return {
        "design_blocked": result,
        "timings": [timer.done()],
        "attempts": {"design": attempts},
        "conductor_state": ConductorState.BLOCKED,
        "error": "design blocked: " + "; ".join(r.why for r in result.reasons),
        "transitions": [started, blocked],
    }


__all__ = ["ACTOR", "design", "design_goal", "plan_goal", "with_svg"]
