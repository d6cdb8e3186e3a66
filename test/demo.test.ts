// The quick-start demo (test/demo/proxy-demo.mjs, what `npm run demo` shows) as
// a test: it runs in the kernel box under this process's node, which is how CI
// runs it under each extra Node version (.ci/other-node). Not in .taprc's set:
// `npm test` does not run it; `npx tap test/demo.test.ts` does (needs root and
// a built tree: dist/ and the addon).
// If the box cannot run (no linux.uml): a skip naming the reason, or a failure
// when CI is set, as in test/kernel.test.ts.
import t from 'tap'
import { runInBox } from './kernel/box.mjs'

const TIMEOUT_S = 300
t.setTimeout((TIMEOUT_S + 60) * 1000)
const CI = /^(?!0$|false$|no$)./i.test(process.env.CI ?? '')

// `node` as the guest finds it on its PATH (box.mjs puts this process's node
// first), so the demo's own `node dist/proxy/main.js status` runs the same one.
const script = 'echo "node $(node --version) at $(command -v node)"\nexec node test/demo/proxy-demo.mjs\n'

let r: Awaited<ReturnType<typeof runInBox>> | undefined
try {
  r = await runInBox({ script, timeoutMs: TIMEOUT_S * 1000 })
} catch (e) {
  const err = e as Error & { code?: string; stdout?: string; stderr?: string }
  if (err.code === 'ENOBOX' && !CI) t.pass('the demo in the box', { skip: err.message })
  else t.fail(`the box failed: ${err.message}`, { stdout: (err.stdout ?? '').slice(-4000), stderr: (err.stderr ?? '').slice(-4000) })
}

if (r) {
  const { code, stdout, stderr } = r
  const diag = { stdout: stdout.slice(-6000), stderr: stderr.slice(-4000) }
  t.equal(code, 0, 'the demo exits 0', diag)
  const first = stdout.split('\n')[0] ?? ''
  t.match(first, new RegExp(`^node ${process.version.replace(/\./g, '\\.')} at `), `the box runs the host's node (${process.version})`, diag)
  // nothing on stderr: no warnings (deprecations, experimental features), no errors;
  // the daemon's own stderr (its JSON log) is collected by the demo, which
  // prints any line of it that is not a log record (see proxy-demo.mjs)
  t.equal(stderr, '', 'nothing on stderr', diag)
  t.match(stdout, /^ {5}TCP {2}10\.96\.115\.68:80 rr$/m, 'ipvsadm lists the ClusterIP service', diag)
  t.notMatch(stdout, /FAILED/, 'every request was answered', diag)
  // before nginx-2 goes: each pod answers 3 of the 9 requests of round robin (node and each pod)
  const before = stdout.slice(0, stdout.indexOf('== nginx-2 goes away'))
  t.equal(before.match(/nginx-1 #+ +3 +nginx-2 #+ +3 +nginx-3 #+ +3/g)?.length, 5,
    'round robin over 3 pods from the node, each pod and the NodePort', diag)
  const after = stdout.slice(before.length)
  t.equal(after.match(/nginx-2 +0 /g)?.length, 2, 'after its endpoint is removed, nginx-2 gets no requests', diag)
  t.match(stdout, /^== done/m, 'the demo ran to the end', diag)
}
