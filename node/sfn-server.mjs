// sfn-server.mjs: a local Step Functions service speaking the real AWS JSON
// 1.0 protocol, so the Go SDK adapter runs unchanged against it. States are
// interpreted by aws-local-stepfunctions; Lambda Task states are sent to a
// local endpoint that implements the Lambda Invoke API.
//
//   node sfn-server.mjs config.json     (with NODE_OPTIONS=--require polyfill-withresolvers.cjs)
//
// config.json: { port, stateMachines: [{arn, definitionPath, substitutions}],
//   lambdaEndpoint, waitTimeOverridesMs?, retryIntervalOverridesMs?, stateLog? }
import { randomUUID } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:http';

// Without it every Task fails with a TypeError that Catch: States.ALL would
// silently turn into a business failure path. Checked before the
// interpreter is imported, which takes a while.
if (typeof Promise.withResolvers !== 'function') {
  fail('Promise.withResolvers is missing: run with NODE_OPTIONS="--require <repo>/node/polyfill-withresolvers.cjs" (or Node >= 22)');
}
const { ExecutionAbortedError, ExecutionError, ExecutionTimeoutError, StateMachine } = await import('aws-local-stepfunctions');

const config = loadConfig(process.argv[2]);
const machines = new Map(config.stateMachines.map((m) => [m.arn, loadStateMachine(m)]));
const executions = new Map(); // execution ARN -> execution, kept after it ends
const stateLog = config.stateLog ? createWriteStream(config.stateLog, { flags: 'a' }) : null;

const operations = { StartExecution: startExecution, DescribeExecution: describeExecution, ListExecutions: listExecutions, StopExecution: stopExecution };

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`sfn-local: ${req.method} ${req.url}: ${err.stack}\n`);
    if (!res.headersSent) send(res, 500, { __type: 'InternalFailure', message: String(err.message) });
  });
});
server.listen(config.port ?? 0, '127.0.0.1', () => {
  process.stdout.write(`sfn-local listening on http://127.0.0.1:${server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    if (stateLog) stateLog.end(() => process.exit(0));
    else process.exit(0);
  });
}

function fail(message) {
  process.stderr.write(`sfn-local: ${message}\n`);
  process.exit(1);
}

function loadConfig(path) {
  if (!path) fail('usage: node sfn-server.mjs <config.json>');
  let cfg;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    fail(`config ${path}: ${err.message}`);
  }
  if (!Array.isArray(cfg.stateMachines) || cfg.stateMachines.length === 0) fail('config: stateMachines is empty');
  if (!cfg.lambdaEndpoint) fail('config: lambdaEndpoint is required');
  return cfg;
}

// loadStateMachine applies the DefinitionSubstitutions the way SAM does,
// refuses what the interpreter would get wrong silently, and finds the
// Lambda function behind every Task state.
function loadStateMachine({ arn, definitionPath, substitutions }) {
  const where = `state machine ${arn} (${definitionPath})`;
  const parts = /^arn:(aws[a-z-]*):states:([^:]+):([^:]+):stateMachine:([^:]+)$/.exec(arn ?? '');
  if (!parts) fail(`${where}: not a state machine ARN`);
  let text;
  try {
    text = readFileSync(definitionPath, 'utf8');
  } catch (err) {
    fail(`${where}: ${err.message}`);
  }
  // aws-local-stepfunctions ignores JSONata without a word: its Output,
  // Arguments and Condition fields would have no effect.
  if (text.includes('QueryLanguage') || text.includes('{%')) fail(`${where}: JSONata (QueryLanguage or {% %}) is not supported by the local interpreter`);
  const missing = new Set();
  text = text.replace(/\$\{([^}]+)\}/g, (placeholder, name) => {
    if (!Object.hasOwn(substitutions ?? {}, name)) missing.add(name);
    return substitutions?.[name] ?? placeholder;
  });
  if (missing.size > 0) fail(`${where}: no substitution for ${[...missing].map((n) => '${' + n + '}').join(', ')}`);
  let definition;
  try {
    definition = JSON.parse(text);
  } catch (err) {
    fail(`${where}: ${err.message}`);
  }
  let stateMachine;
  try {
    stateMachine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
  } catch (err) {
    fail(`${where}: ${err.message}`);
  }
  const functions = {};
  collectLambdaTasks(definition, functions, where);
  const [, partition, region, account, name] = parts;
  return { arn, name, executionPrefix: `arn:${partition}:states:${region}:${account}:execution:${name}:`, stateMachine, functions, order: [] };
}

// collectLambdaTasks maps every Task state name, nested ones included, to
// its function name: local handlers are keyed by state name only.
function collectLambdaTasks(definition, functions, where) {
  for (const [name, state] of Object.entries(definition.States ?? {})) {
    if (state.Type === 'Task') {
      const fn = /^arn:aws[a-z-]*:lambda:[^:]+:[^:]+:function:([^:]+)(:[^:]+)?$/.exec(state.Resource)?.[1];
      // Anything else would make the interpreter call real AWS.
      if (!fn) fail(`${where}: Task ${name}: Resource ${state.Resource} is not a Lambda function ARN`);
      if (functions[name] && functions[name] !== fn) fail(`${where}: two Task states named ${name} call different functions`);
      functions[name] = fn;
    } else if (state.Type === 'Map') {
      collectLambdaTasks(state.ItemProcessor ?? state.Iterator, functions, where);
    } else if (state.Type === 'Parallel') {
      for (const branch of state.Branches) collectLambdaTasks(branch, functions, where);
    }
  }
}

// lambdaHandlers builds the Task overrides of one execution. A function
// error is thrown with the Lambda errorType as its name (what Retry and
// Catch match) and the invoke response body as its message (what Catch
// puts in Cause), as Step Functions does with a Lambda task.
function lambdaHandlers(functions, signal) {
  const handlers = {};
  for (const [state, fn] of Object.entries(functions)) {
    const url = `${config.lambdaEndpoint}/2015-03-31/functions/${encodeURIComponent(fn)}/invocations`;
    handlers[state] = async (input) => {
      let res;
      let body;
      try {
        res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(input), signal });
        body = await res.text();
      } catch (err) {
        throw taskError('Lambda.ServiceException', `invoke ${fn}: ${err.cause?.message ?? err.message}`);
      }
      if (res.status !== 200) throw taskError('Lambda.ServiceException', `invoke ${fn}: HTTP ${res.status}: ${body}`);
      if (res.headers.has('x-amz-function-error')) {
        let errorType;
        try {
          errorType = JSON.parse(body).errorType;
        } catch {
          // not JSON: reported as Lambda.Unknown below
        }
        throw taskError(errorType || 'Lambda.Unknown', body);
      }
      try {
        return JSON.parse(body);
      } catch (err) {
        throw taskError('Lambda.ServiceException', `invoke ${fn}: result is not JSON: ${err.message}`);
      }
    };
  }
  return handlers;
}

function taskError(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

async function handle(req, res) {
  const events = /^\/executions\/([^/]+)\/events$/.exec(req.url);
  if (req.method === 'GET' && events) return executionEvents(res, decodeURIComponent(events[1]));
  if (req.method !== 'POST' || req.url !== '/') return send(res, 404, { __type: 'UnknownOperationException', message: `no route for ${req.method} ${req.url}` });

  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const target = req.headers['x-amz-target'] ?? '';
  const op = target.startsWith('AWSStepFunctions.') ? operations[target.slice('AWSStepFunctions.'.length)] : undefined;
  if (!op) return send(res, 400, { __type: 'UnknownOperationException', message: `unknown operation ${target}` });
  let params;
  try {
    params = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch (err) {
    return send(res, 400, { __type: 'SerializationException', message: err.message });
  }
  try {
    send(res, 200, op(params));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    send(res, 400, { __type: err.type, message: err.message });
  }
}

class ApiError extends Error {
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/x-amz-json-1.0',
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(text);
}

function seconds(ms) {
  return ms / 1000;
}

// Execution names follow the AWS rules: 1 to 80 characters, none of these.
const invalidNameChars = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/;

function startExecution({ stateMachineArn, name = randomUUID(), input = '{}' }) {
  const machine = machines.get(stateMachineArn);
  if (!machine) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
  if (typeof name !== 'string' || name.length < 1 || name.length > 80 || invalidNameChars.test(name)) throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
  let parsed;
  try {
    parsed = JSON.parse(input);
  } catch (err) {
    throw new ApiError('InvalidExecutionInput', `Invalid State Machine Execution Input: '${err.message}'`);
  }
  const arn = machine.executionPrefix + name;
  const existing = executions.get(arn);
  if (existing) {
    // AWS: an open execution with the same input is the same start; a
    // different input, or an execution that has ended, is a conflict.
    if (existing.status === 'RUNNING' && existing.input === input) return { executionArn: arn, startDate: seconds(existing.startMs) };
    throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
  }
  const exec = { arn, machine, name, input, status: 'RUNNING', startMs: Date.now(), events: [] };
  executions.set(arn, exec);
  machine.order.push(exec);
  run(exec, parsed);
  return { executionArn: arn, startDate: seconds(exec.startMs) };
}

async function run(exec, input) {
  const controller = new AbortController();
  const execution = exec.machine.stateMachine.run(input, {
    overrides: {
      taskResourceLocalHandlers: lambdaHandlers(exec.machine.functions, controller.signal),
      waitTimeOverrides: config.waitTimeOverridesMs,
      retryIntervalOverrides: config.retryIntervalOverridesMs,
    },
    context: {
      Execution: { Id: exec.arn, Name: exec.name },
      StateMachine: { Id: exec.machine.arn, Name: exec.machine.name },
    },
  });
  exec.abort = () => {
    controller.abort();
    execution.abort();
  };
  const drained = (async () => {
    for await (const event of execution.eventLogs) {
      const clean = { ...event, Cause: causeText(event.Cause) };
      exec.events.push(clean);
      stateLog?.write(JSON.stringify({ execution: exec.arn, ...clean }) + '\n');
    }
  })();
  let end;
  try {
    end = { status: 'SUCCEEDED', output: JSON.stringify(await execution.result) };
  } catch (err) {
    if (err instanceof ExecutionAbortedError) end = { status: 'ABORTED' };
    else if (err instanceof ExecutionTimeoutError) end = { status: 'TIMED_OUT' };
    else {
      const cause = err instanceof ExecutionError ? err.cause : err;
      end = { status: 'FAILED', error: cause?.name, cause: causeText(cause?.message) };
    }
  }
  // StopExecution has already recorded the end of an aborted execution.
  if (exec.status === 'RUNNING') Object.assign(exec, end, { stopMs: Date.now() });
  await drained;
  const retries = exec.events.filter((e) => e.type === 'StateRetried').length;
  const transitions = exec.events.filter((e) => e.type === 'StateEntered').length + retries;
  process.stderr.write(`sfn-local: execution ${exec.name} ${exec.status} transitions=${transitions} retries=${retries} ms=${exec.stopMs - exec.startMs}\n`);
}

// causeText keeps Cause a string: the interpreter sometimes hands over the
// nested Error object itself.
function causeText(cause) {
  if (cause === undefined || typeof cause === 'string') return cause;
  if (cause instanceof Error) return cause.message;
  return JSON.stringify(cause);
}

function findExecution(executionArn) {
  const exec = executions.get(executionArn);
  if (exec) return exec;
  if (!/^arn:aws[a-z-]*:states:[^:]+:[^:]+:execution:[^:]+:[^:]+$/.test(executionArn ?? '')) throw new ApiError('InvalidArn', `Invalid Arn: '${executionArn}'`);
  throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
}

function describeExecution({ executionArn }) {
  const exec = findExecution(executionArn);
  return {
    executionArn: exec.arn,
    stateMachineArn: exec.machine.arn,
    name: exec.name,
    status: exec.status,
    startDate: seconds(exec.startMs),
    stopDate: exec.stopMs === undefined ? undefined : seconds(exec.stopMs),
    input: exec.input,
    output: exec.output,
    error: exec.error,
    cause: exec.cause,
  };
}

// ListExecutions pages newest first; the token is the offset to go on from.
function listExecutions({ stateMachineArn, statusFilter, maxResults, nextToken }) {
  const machine = machines.get(stateMachineArn);
  if (!machine) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
  const matching = machine.order.filter((e) => !statusFilter || e.status === statusFilter).reverse();
  const from = nextToken ? Number.parseInt(nextToken, 10) : 0;
  if (!(from >= 0)) throw new ApiError('InvalidToken', `Invalid Token: '${nextToken}'`);
  const to = from + (maxResults || 100);
  return {
    executions: matching.slice(from, to).map((e) => ({
      executionArn: e.arn,
      stateMachineArn: machine.arn,
      name: e.name,
      status: e.status,
      startDate: seconds(e.startMs),
      stopDate: e.stopMs === undefined ? undefined : seconds(e.stopMs),
    })),
    nextToken: to < matching.length ? String(to) : undefined,
  };
}

function stopExecution({ executionArn, error, cause }) {
  const exec = findExecution(executionArn);
  if (exec.status === 'RUNNING') {
    Object.assign(exec, { status: 'ABORTED', stopMs: Date.now(), error, cause });
    exec.abort();
  }
  return { stopDate: seconds(exec.stopMs) };
}

// GET /executions/<name or execution ARN>/events: the interpreter's event
// log, for tests and benchmarks (transitions, retries, timings).
function executionEvents(res, id) {
  const found = executions.has(id) ? [executions.get(id)] : [...executions.values()].filter((e) => e.name === id);
  if (found.length === 0) return send(res, 404, { __type: 'ExecutionDoesNotExist', message: `Execution Does Not Exist: '${id}'` });
  if (found.length > 1) return send(res, 409, { __type: 'AmbiguousName', message: `'${id}' names executions of several state machines: use the execution ARN` });
  send(res, 200, found[0].events);
}
