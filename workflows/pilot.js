export const meta = {
  name: 'pilot',
  description: 'Hybrid pilot: every story through P1-P7 (Claude judges, GLM writes; engine=claude: Claude writes too), pipelined with no barrier between phases; the review loop is decided from the reviewer\'s data',
  whenToUse: 'Arguments: story ids, comma-separated, and optionally max_review_rounds=N, frontend=<ids of UI stories> and engine=hybrid|claude. First run `hybrid pilot-check <the arguments>` with Bash: if it fails, answer with its line and start nothing. Then `hybrid test-command` (stop with its line if it fails) and `hybrid run-start <the arguments>`, whose `workflow args:` JSON goes into the workflow\'s args with line and test_command. With --no-workflow in the arguments, do not call Workflow: call Skill({skill: "hybrid:pilot-agents", args: <the arguments>}) and follow it instead. After the workflow\'s result arrives, call Skill({skill: "hybrid:report", args: <the story ids>}) and follow it.',
  phases: [
    { title: 'P1 UX' },
    { title: 'P2 Tests' },
    { title: 'P3 Implement' },
    { title: 'P5 Review' },
    { title: 'P4 Refactor' },
    { title: 'P6 QA' },
    { title: 'P7 Docs' },
  ],
}

// args: the command line as a string ("01.2,01.3 max_review_rounds=3 phases=P1,P2 frontend=01.3"), or an object:
//   {stories: ['01.2', ...] or '01.2,01.3', max_review_rounds: 2, phases: ['P1', ...] (only these run),
//    line: a command line as above, read first (the object's other keys come on top of it),
//    test_command: 'python3 -m pytest' (the project's test command, checked by `hybrid test-command`:
//    the user's rules let the GLM tools run it; P3-P6 get it in their prompts),
//    developer: {'01.4': 'frontend-dev'} (default backend-dev; frontend: '01.4' or ['01.4'] says the same),
//    resume: {'01.2': {done: ['P1', 'P2'], round: 2}}: the phases the checkpoints show finished
//    before the story's next step, and the review round to continue from (/hybrid:resume),
//    engine: 'hybrid' (GLM writes P2, P3, P4, P7 through the glm tools) or 'claude' (claude-* agents
//    write them with Claude Code's own tools), run and models: what `hybrid run-start` printed (the
//    run's id, and for engine=claude each code-writing phase's model family).
const PHASES = ['P1', 'P2', 'P3', 'P4', 'P5', 'P6', 'P7']
const TITLE = { P1: 'P1 UX', P2: 'P2 Tests', P3: 'P3 Implement', P4: 'P4 Refactor', P5: 'P5 Review', P6: 'P6 QA', P7: 'P7 Docs' }
const STORY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

function commaList(value) {
  return Array.isArray(value) ? value.map(String) : String(value || '').split(',').map(s => s.trim()).filter(Boolean)
}

function fromCommandLine(line) {
  const input = { stories: [], flags: [] }
  for (const word of String(line).split(/\s+/).filter(Boolean)) {
    if (word.startsWith('--')) input.flags.push(word)
    else if (word.includes('=')) input[word.slice(0, word.indexOf('='))] = word.slice(word.indexOf('=') + 1)
    else input.stories.push(...commaList(word))
  }
  return input
}

// What the pilot takes, as mcp_server/pilot_check.py lists it for `hybrid pilot-check` (which the
// command runs first): option=value words of a command line, flags, and an object's own keys.
const KNOWN_OPTIONS = ['max_review_rounds', 'frontend', 'phases', 'engine']
const KNOWN_FLAGS = ['--no-workflow']
const KNOWN_KEYS = ['stories', 'flags', 'developer', 'resume', 'left', 'line', 'test_command', 'run', 'models', ...KNOWN_OPTIONS]  // left: hybrid resume-args' stories not resumed

function unknownArgs(input) {
  const unknown = [
    ...Object.keys(input).filter(key => !KNOWN_KEYS.includes(key)),
    ...(input.flags || []).filter(flag => !KNOWN_FLAGS.includes(flag)),
  ]
  if (!unknown.length) return []
  const known = [...KNOWN_OPTIONS.map(name => `${name}=...`), ...KNOWN_FLAGS].join(', ')
  return [`unknown option${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (the pilot knows: ${known})`]
}

function readArgs() {
  const { line, ...keys } = typeof args === 'string' ? { line: args } : { ...(args || {}) }
  const input = line === undefined ? keys : { ...fromCommandLine(line), ...keys }
  const problems = unknownArgs(input)
  if ((input.flags || []).includes('--no-workflow')) problems.push('--no-workflow: run Skill hybrid:pilot-agents with these arguments instead')
  const stories = commaList(input.stories)
  if (!stories.length) problems.push('no story ids given (e.g. 01.2,01.3)')
  const bad = stories.filter(s => !STORY_ID.test(s))
  if (bad.length) problems.push(`not story ids: ${bad.join(', ')}`)
  const rounds = input.max_review_rounds === undefined ? 2 : Number(input.max_review_rounds)
  if (!Number.isInteger(rounds) || rounds < 1) problems.push(`max_review_rounds must be a whole number >= 1, not ${input.max_review_rounds}`)
  const phases = input.phases === undefined ? PHASES : commaList(input.phases)
  const unknown = phases.filter(p => !PHASES.includes(p))
  if (unknown.length) problems.push(`unknown phases: ${unknown.join(', ')} (use P1..P7)`)
  const developer = { ...(input.developer || {}) }
  for (const story of commaList(input.frontend)) developer[story] = 'frontend-dev'
  const strangers = Object.keys(developer).filter(s => !stories.includes(s))
  if (strangers.length) problems.push(`a developer is named for stories not in the run: ${strangers.join(', ')}`)
  const roles = Object.values(developer).filter(d => d !== 'backend-dev' && d !== 'frontend-dev')
  if (roles.length) problems.push(`a P3 developer is backend-dev or frontend-dev, not ${roles.join(', ')}`)
  const testCommand = input.test_command === undefined ? '' : String(input.test_command).trim()
  if (input.test_command !== undefined && (!testCommand || testCommand.includes('\n'))) problems.push('test_command must be one command line')
  const engine = input.engine === undefined ? 'hybrid' : String(input.engine)
  if (!ENGINES.includes(engine)) problems.push(`engine=${engine}: the engines are ${ENGINES.join(', ')}`)
  const models = { ...(input.models || {}) }
  const badModels = Object.entries(models).filter(([p, m]) => !CLAUDE_PHASES.includes(p) || !FAMILIES.includes(m))
  if (badModels.length) problems.push(`models: ${badModels.map(([p, m]) => `${p}=${m}`).join(', ')} (phases ${CLAUDE_PHASES.join(', ')}; ${FAMILIES.join(', ')})`)
  return { problems, stories, rounds, only: new Set(phases), resume: input.resume || {}, developer, testCommand, engine, models, runId: input.run || null }
}

// engine=claude: these phases' agents write the files with Claude Code's own tools (claude-*
// agents, each on its phase's model family from `hybrid run-start`), and call no GLM tool.
const ENGINES = ['hybrid', 'claude']
const CLAUDE_PHASES = ['P2', 'P3', 'P4', 'P7']
const FAMILIES = ['haiku', 'sonnet', 'opus']

const { problems, stories, rounds: maxRounds, only, resume, developer, testCommand, engine, models, runId } = readArgs()
const BY_CLAUDE = engine === 'claude'
const WRITES = BY_CLAUDE ? 'with your own file tools' : 'through GLM'
if (problems.length) {
  log(`pilot: not started: ${problems.join('; ')}`)
  return { error: problems.join('; '), stories: [] }
}

// What every agent returns as data: how its phase ended. P5 and P6 return their results.
const STATUS = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['done', 'failed', 'skipped'] }, summary: { type: 'string' } },
  required: ['status', 'summary'],
}
const REVIEW = {
  type: 'object',
  properties: {
    verdict: { type: 'string', enum: ['APPROVED', 'REQUEST_CHANGES'] },
    score: { type: 'number', minimum: 0, maximum: 10 },
    issues: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          severity: { type: 'string', enum: ['critical', 'major', 'minor', 'info'] },
          file: { type: 'string' },
          line: { type: 'integer' },
          text: { type: 'string' },
        },
        required: ['severity', 'text'],
      },
    },
  },
  required: ['verdict', 'score', 'issues'],
}
const QA = {
  type: 'object',
  properties: {
    ac_results: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'string' }, pass: { type: 'boolean' }, evidence: { type: 'string' } },
        required: ['id', 'pass', 'evidence'],
      },
    },
  },
  required: ['ac_results'],
}

function issueLines(review) {
  return review.issues.map(i => `- ${i.severity} ${i.file || '?'}:${i.line || '?'} ${i.text}`).join('\n')
}

function stop(state, reason) {
  state.stopped = true
  state.status = 'failed'
  state.reason = reason
  log(`${state.story}: stopped, ${reason}`)
}

// Whether a phase runs now: not for a stopped story, not outside `phases`, not when the
// checkpoint already shows it finished (a resumed run).
function wanted(state, phase) {
  if (state.stopped || !only.has(phase)) return false
  if (state.done.has(phase)) {
    log(`${state.story} ${phase}: already done in the checkpoint, skipped`)
    return false
  }
  return true
}

// The phases that run the tests are told the command the user's rules allow, so none of them
// picks another one that the GLM tools would refuse.
const TESTED = new Set(['P3', 'P4', 'P5', 'P6'])

async function run(state, phase, role, task, schema = STATUS) {
  const tests = testCommand && TESTED.has(phase) ? `\nTest command: \`${testCommand}\`` : ''
  const claude = BY_CLAUDE && CLAUDE_PHASES.includes(phase)
  const options = { label: `${phase} ${state.story}`, phase: TITLE[phase], agentType: `hybrid:${claude ? 'claude-' : ''}${role}`, schema }
  if (claude && models[phase]) options.model = models[phase]
  const result = await agent(`[story ${state.story} ${phase}] ${task}${tests}`, options)
  if (result == null) stop(state, `${phase} did not finish (the agent failed or was stopped)`)
  else if (schema === STATUS && result.status === 'failed') stop(state, `${phase} failed: ${result.summary}`)
  else state.ran.push(phase)
  return result
}

async function ux(story) {
  const resumed = resume[story] || {}
  const state = {
    story, status: 'done', reason: null, ran: [], rounds: 0, score: null, refactored: false,
    done: new Set(resumed.done || []), round: Number(resumed.round || 1),
  }
  if (wanted(state, 'P1')) await run(state, 'P1', 'ux-designer', `Design the UX for story ${story}.`)
  return state
}

async function tests(state) {
  if (wanted(state, 'P2')) await run(state, 'P2', 'test-writer', `Write the tests for story ${state.story} ${WRITES}.`)
  return state
}

async function implementAndReview(state) {
  let round = state.round
  let review = null
  state.resumedPastReview = state.done.has('P5')
  while (!state.stopped) {
    if (wanted(state, 'P3')) {
      // Resumed in a later round, the workflow has not seen the review that asked for changes.
      const fix = review ? `\nFix these review issues:\n${issueLines(review)}`
        : round > 1 ? `\nThis is review round ${round}: fix the issues of the latest review, which are in the checkpoint.` : ''
      await run(state, 'P3', developer[state.story] || 'backend-dev', `Implement story ${state.story} ${WRITES}.${fix}`)
    }
    if (!wanted(state, 'P5')) break
    const last = round >= maxRounds
    const task = `Review story ${state.story}, review round ${round} of ${maxRounds}${last ? ' (the last)' : ''}.`
    review = await run(state, 'P5', 'code-reviewer', task, REVIEW)
    if (state.stopped) break
    state.rounds = round
    state.score = review.score
    log(`${state.story}: review round ${round} ${review.verdict} ${review.score}/10, ${review.issues.length} issue(s)`)
    if (review.verdict === 'APPROVED') break
    if (last) {
      stop(state, `review rounds exhausted: ${round} of ${maxRounds} asked for changes`)
      break
    }
    round += 1
    state.done.delete('P3') // the new round redoes P3 and P5, whatever the checkpoint said before
    state.done.delete('P5')
  }
  state.review = review
  return state
}

async function refactor(state) {
  const review = state.review
  // Resumed past the review, the workflow has not seen it: the senior-dev reads it from the
  // checkpoint and skips itself when it was clean.
  const needed = review ? review.issues.length > 0 : state.resumedPastReview
  if (needed && wanted(state, 'P4')) {
    const issues = review ? `:\n${issueLines(review)}` : ' (they are in the checkpoint)'
    const result = await run(state, 'P4', 'senior-dev', `Refactor story ${state.story} for the review's remaining issues${issues}`)
    state.refactored = result != null && result.status === 'done'
  }
  return state
}

async function qa(state) {
  if (!wanted(state, 'P6')) return state
  const result = await run(state, 'P6', 'qa-agent', `Check every acceptance criterion of story ${state.story}.`, QA)
  if (result) {
    const failed = result.ac_results.filter(r => !r.pass).map(r => r.id)
    state.ac_passed = result.ac_results.length - failed.length
    state.ac_total = result.ac_results.length
    if (failed.length) stop(state, `QA failed ${failed.join(', ')}`)
  }
  return state
}

async function docs(state) {
  if (wanted(state, 'P7')) await run(state, 'P7', 'tech-writer', `Write the docs for story ${state.story} ${WRITES}.`)
  return state
}

log(`pilot: ${stories.join(', ')}; engine ${engine}${runId ? `, run ${runId}` : ''}; at most ${maxRounds} review round(s)`)
const results = await pipeline(stories, ux, tests, implementAndReview, refactor, qa, docs)
const summary = results.map((state, index) =>
  state == null
    ? { story: stories[index], status: 'failed', reason: 'a stage of the workflow threw', phases_run: [] }
    : {
        story: state.story, status: state.status, reason: state.reason, phases_run: state.ran,
        review_rounds: state.rounds, score: state.score, refactored: state.refactored,
        ac_passed: state.ac_passed ?? null, ac_total: state.ac_total ?? null,
      },
)
log(`pilot: ${summary.filter(s => s.status === 'done').length} of ${summary.length} stories done`)
return { run: runId, engine, stories: summary }
