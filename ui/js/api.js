// The servitord HTTP API. Relative URLs only, so the UI works wherever it is served
// from (servitord itself, or the `servitorctl ui` bridge under any port).

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The error an unsuccessful answer carries: its JSON `message` when it has one. */
export async function errorOf(response) {
  let message = `${response.status} ${response.statusText || "error"}`.trim();
  try {
    const body = await response.json();
    if (body && typeof body.message === "string" && body.message) message = body.message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(message, response.status);
}

export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value != null) query.append(key, String(value));
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function call(path, params, { method = "GET", signal } = {}) {
  let response;
  try {
    response = await fetch(url(path, params), { method, signal, cache: "no-store", headers: { Accept: "application/json" } });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(`cannot reach the server (${error.message})`, 0);
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

export const api = {
  jobs: (signal) => call("api/jobs/get_list", {}, { signal }),
  job: (jobId, signal) => call("api/jobs/get", { job_id: jobId }, { signal }),
  /** Starts a run; `inputs` maps input names to values. Answers the new execution id. */
  run: async (jobId, inputs = {}) => {
    const params = { job_id: jobId };
    for (const [name, value] of Object.entries(inputs)) params[`input_value_${name}`] = value;
    const answer = await call("api/jobs/run", params, { method: "POST" });
    return answer?.execution_id == null ? null : String(answer.execution_id);
  },
  /**
   * Newest first: at most `limit`, only those older than `before` when given. Older
   * daemons ignore both parameters, so the list is cut here too.
   */
  executions: async (jobId, { limit, before, signal } = {}) => {
    const list = await call("api/jobs/executions/get_list", { job_id: jobId, limit, before }, { signal });
    let all = Array.isArray(list) ? list : [];
    if (before != null) all = all.filter((e) => Number(e.execution_id) < Number(before));
    return limit ? all.slice(0, limit) : all;
  },
  execution: (jobId, executionId, signal) =>
    call("api/jobs/executions/get", { job_id: jobId, execution_id: executionId }, { signal }),
  /** Pauses or resumes a job's schedule (daemons with schedules only). */
  pauseSchedule: (jobId) => call("api/jobs/schedule/pause", { job_id: jobId }, { method: "POST" }),
  resumeSchedule: (jobId) => call("api/jobs/schedule/resume", { job_id: jobId }, { method: "POST" }),
  cancel: (jobId, executionId) =>
    call("api/jobs/executions/cancel", { job_id: jobId, execution_id: executionId }, { method: "POST" }),
  logUrl: (jobId, executionId) => url("api/jobs/executions/logs/get", { job_id: jobId, execution_id: executionId }),
};
