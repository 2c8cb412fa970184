export const meta = {
  name: 'pilot',
  description: 'Hybrid pilot: every story through P1-P7 (Claude judges, GLM writes), pipelined with no barrier between phases; the review loop is decided from the reviewer\'s data',
  whenToUse: 'Arguments: story ids, comma-separated, and optionally max_review_rounds=N. With --no-workflow in the arguments, do not call Workflow: call Skill({skill: "hybrid:pilot-agents", args: <the arguments>}) and follow it instead. After the workflow\'s result arrives, run `hybrid report --stories <ids>` with Bash and give its headline and verdict.',
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

// args: the command line as a string ("01.2,01.3 max_review_rounds=3"), or an object:
//       {stories: ['01.2', ...] or '01.2,01.3', max_review_rounds: 2, phases: ['P1', ...] (optional),
//        developer: {'01.4': 'frontend-dev'} (optional; default backend-dev),
//        resume: {'01.2': {done: ['P1', 'P2'], round: 2}} (optional: the phases the checkpoints show done or
//        skipped, and the review round to continue from; /hybrid:resume reads them from checkpoint_list)}
function fromCommandLine(line) {
  const words = String(line).split(/[,\s]+/).filter(Boolean)
  const options = Object.fromEntries(words.filter(w => w.includes('=')).map(w => w.split('=', 2)))
  return { ...options, stories: words.filter(w => !w.includes('=') && !w.startsWith('--')), flags: words.filter(w => w.startsWith('--')) }
}
const input = typeof args === 'string' ? fromCommandLine(args) : args || {}
if ((input.flags || []).includes('--no-workflow')) {
  return { error: '--no-workflow: run Skill hybrid:pilot-agents with these arguments instead of this workflow' }
}
const stories = Array.isArray(input.stories) ? input.stories : String(input.stories || '').split(/[,\s]+/).filter(Boolean)
const maxRounds = Number(input.max_review_rounds || 2)
const only = input.phases ? new Set(input.phases) : null
const resume = input.resume || {}
const developer = input.developer || {}

const TITLE = { P1: 'P1 UX', P2: 'P2 Tests', P3: 'P3 Implement', P4: 'P4 Refactor', P5: 'P5 Review', P6: 'P6 QA', P7: 'P7 Docs' }
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

// One story's path through the phases. `state` carries what the next stage needs; a stage
// that ends the story (failed, or phases not asked for) passes it through untouched.
function wanted(state, phase) {
  if (state.stopped) return false
  if (only && !only.has(phase)) return false
  if (state.done.has(phase)) {
    log(`${state.story} ${phase}: already done in the checkpoint, skipped`)
    return false
  }
  return true
}

async function run(state, phase, agentType, task, schema) {
  const options = { label: `${phase} ${state.story}`, phase: TITLE[phase], agentType: `hybrid:${agentType}` }
  if (schema) options.schema = schema
  const result = await agent(`[story ${state.story} ${phase}] ${task}`, options)
  if (result === null) stop(state, `${phase} did not finish (the agent failed or was stopped)`)
  return result
}

function stop(state, reason) {
  state.stopped = true
  state.status = 'failed'
  state.reason = reason
  log(`${state.story}: stopped, ${reason}`)
}

async function ux(story) {
  const resumed = resume[story] || {}
  const state = { story, status: 'done', rounds: 0, score: null, refactored: false, done: new Set(resumed.done || []), round: Number(resumed.round || 1) }
  if (wanted(state, 'P1')) await run(state, 'P1', 'ux-designer', `Design the UX for story ${story}.`)
  return state
}

async function tests(state) {
  if (wanted(state, 'P2')) await run(state, 'P2', 'test-writer', `Write the tests for story ${state.story} through GLM.`)
  return state
}

async function implementAndReview(state) {
  let round = state.round
  let review = null
  state.resumedPastReview = state.done.has('P5')
  while (!state.stopped) {
    if (wanted(state, 'P3')) {
      const fix = review && review.verdict === 'REQUEST_CHANGES' ? `\nFix these review issues:\n${issueLines(review)}` : ''
      await run(state, 'P3', developer[state.story] || 'backend-dev', `Implement story ${state.story} through GLM.${fix}`)
    }
    if (!wanted(state, 'P5')) break
    review = await run(state, 'P5', 'code-reviewer', `Review story ${state.story}, review round ${round}.`, REVIEW)
    if (state.stopped) break
    state.rounds = round
    state.score = review.score
    state.issues = review.issues.length
    log(`${state.story}: review round ${round} ${review.verdict} ${review.score}/10, ${review.issues.length} issue(s)`)
    if (review.verdict === 'APPROVED') break
    if (round >= maxRounds) {
      stop(state, `review rounds exhausted: ${round} of ${maxRounds} asked for changes`)
      break
    }
    round += 1
    state.done.delete('P3') // a new round redoes P3 and P5, whatever the checkpoint said before
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
    await run(state, 'P4', 'senior-dev', `Refactor story ${state.story} for the review's remaining issues${issues}`)
    state.refactored = !state.stopped
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
  if (wanted(state, 'P7')) await run(state, 'P7', 'tech-writer', `Write the docs for story ${state.story} through GLM.`)
  return state
}

log(`pilot: ${stories.join(', ')}; at most ${maxRounds} review round(s)`)
const results = await pipeline(stories, ux, tests, implementAndReview, refactor, qa, docs)
const summary = results.map((state, index) =>
  state === null
    ? { story: stories[index], status: 'failed', reason: 'a stage threw' }
    : { story: state.story, status: state.status, reason: state.reason || null, review_rounds: state.rounds,
        score: state.score, refactored: state.refactored, ac_passed: state.ac_passed ?? null, ac_total: state.ac_total ?? null },
)
log(`pilot: ${summary.filter(s => s.status === 'done').length} of ${summary.length} stories done`)
return { stories: summary }
