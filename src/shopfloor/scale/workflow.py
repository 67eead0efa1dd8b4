"""The one workflow: a PM, Coder or QA run, carried out by a worker that has the agent.

Temporal's sandbox re-imports this module for every workflow run: it imports only the
stdlib-only contract (passed through) and Temporal itself.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from shopfloor.scale.contract import ACTIVITY, WORKFLOW, RunReply, RunRequest, agent_queue

#: A dead worker's run is started again elsewhere, as often as workers die: losing a machine
#: is never the task's fault. An error the worker raises on purpose (`RunRefused`) is final.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
    non_retryable_error_types=["RunRefused"],
)


@workflow.defn(name=WORKFLOW)
class RunWorkflow:
    @workflow.run
    async def run(self, request: RunRequest) -> RunReply:
        # Only workers that have the agent poll its queue; with none up, the run waits.
        reply: RunReply = await workflow.execute_activity(
            ACTIVITY,
            request,
            result_type=RunReply,
            task_queue=agent_queue(workflow.info().task_queue, request.agent),
            start_to_close_timeout=timedelta(seconds=request.timeout),
            heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout),
            retry_policy=RETRY,
            # A cancel waits until the worker has killed the agent's process group.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        return reply
