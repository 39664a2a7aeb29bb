"""Attribute keys and span names of agentwatch's telemetry contract, defined once.

Every other module, in the SDK and in the service, spells these keys through the constants
here and never as literals (DESIGN.md, "Telemetry contract"). The GenAI keys follow the
OpenTelemetry GenAI semantic conventions; the ``agentwatch.*`` keys carry the signals those
conventions lack. This module imports nothing, so the service can read it cheaply.
"""

from __future__ import annotations

from typing import Final

# --- Resource attributes -------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
SERVICE_VERSION: Final = "service.version"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"

# --- GenAI span attributes -----------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"  # opt-in in the GenAI semconv
ERROR_TYPE: Final = "error.type"

# gen_ai.operation.name values
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_CHAT: Final = "chat"

# --- agentwatch span attributes ------------------------------------------------------------
SIGNAL: Final = "agentwatch.signal"
SIGNAL_HEALTH: Final = "health"
SIGNAL_BEHAVIOR: Final = "behavior"
SIGNAL_SYSTEM: Final = "system"

ACTION_FINGERPRINT: Final = "agentwatch.action.fingerprint"

DECISION_CHOICE: Final = "agentwatch.decision.choice"
DECISION_OPTIONS: Final = "agentwatch.decision.options"

STATE_FROM: Final = "agentwatch.state.from"
STATE_TO: Final = "agentwatch.state.to"

GOAL_ID: Final = "agentwatch.goal.id"
GOAL_PROGRESS: Final = "agentwatch.goal.progress"

HEARTBEAT_SEQ: Final = "agentwatch.heartbeat.seq"
HEARTBEAT_INTERVAL_S: Final = "agentwatch.heartbeat.interval_s"
AGENT_STATUS: Final = "agentwatch.agent.status"
PROCESS_CPU_UTILIZATION: Final = "process.cpu.utilization"
PROCESS_MEMORY_USAGE: Final = "process.memory.usage"
ERRORS: Final = "agentwatch.errors"
# agentwatch.agent.status values
STATUS_RUNNING: Final = "running"
STATUS_IDLE: Final = "idle"
STATUS_PAUSED: Final = "paused"
# The last heartbeat of an agent shutting down cleanly: its silence afterwards is no loss.
STATUS_STOPPED: Final = "stopped"
CONTROL_URL: Final = "agentwatch.control.url"

CHECKPOINT_ID: Final = "agentwatch.checkpoint.id"
CHECKPOINT_STEP: Final = "agentwatch.checkpoint.step"

MESSAGE_PEER: Final = "agentwatch.message.peer"
MESSAGE_DIRECTION: Final = "agentwatch.message.direction"
MESSAGE_BYTES: Final = "agentwatch.message.bytes"
# agentwatch.message.direction values
DIRECTION_SEND: Final = "send"
DIRECTION_RECEIVE: Final = "receive"

# --- Span names ----------------------------------------------------------------------------
SPAN_INVOKE_AGENT_PREFIX: Final = "invoke_agent"
SPAN_EXECUTE_TOOL_PREFIX: Final = "execute_tool"
SPAN_DECISION: Final = "agentwatch.decision"
SPAN_STATE_TRANSITION: Final = "agentwatch.state_transition"
SPAN_GOAL_PROGRESS: Final = "agentwatch.goal_progress"
SPAN_HEARTBEAT: Final = "agentwatch.heartbeat"
SPAN_CHECKPOINT: Final = "agentwatch.checkpoint"
SPAN_MESSAGE: Final = "agentwatch.message"

# --- Control webhooks (service -> agent runtime) -------------------------------------------
# Standard Webhooks headers (https://www.standardwebhooks.com/).
WEBHOOK_ID_HEADER: Final = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER: Final = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER: Final = "webhook-signature"
WEBHOOK_SECRET_ENV: Final = "AGENTWATCH_WEBHOOK_SECRET"

CONTROL_TYPE_BREAKER: Final = "breaker"
CONTROL_TYPE_ROLLBACK: Final = "rollback"
CONTROL_TYPE_FAILOVER: Final = "failover"

BREAKER_CLOSED: Final = "closed"
BREAKER_OPEN: Final = "open"
BREAKER_HALF_OPEN: Final = "half_open"
BREAKER_FORCED_OPEN: Final = "forced_open"

# --- Pull fallback (agent -> service API) --------------------------------------------------
# GET {api}/api/v1/agents/{agent}/control answers the agent's control state as JSON.
CONTROL_STATE_PATH: Final = "/api/v1/agents/{agent}/control"
API_URL_ENV: Final = "AGENTWATCH_API_URL"
API_TOKEN_ENV: Final = "AGENTWATCH_API_TOKEN"
