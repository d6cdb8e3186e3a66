// The script that runs the kernel test files in the box (test/kernel/ktest-script.mjs),
// run here on the host with shell scripts standing in for the files: a file
// killed by its timeout, or one that exits leaving children behind, leaves
// nothing running for the next file, and the xtables lock is free again.
// (A file killed mid-iptables once left the lock held; the next file failed.)
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ktestScript } from '../kernel/ktest-script.mjs'

// Our stand-in processes: sleep 73xx.<our pid>, which nothing else runs.
const sleep = (n: number): string => `sleep ${n}.${process.pid}`
const MARK = `sleep 73[0-9][0-9]\\.${process.pid}`
const survivors = (): string => spawnSync('pgrep', ['-a', '-f', MARK], { encoding: 'utf8' }).stdout.trim()

t.test('a killed file and a file that leaves children: both cleaned up before the next', { skip: process.getuid?.() !== 0 ? 'needs root (unshare -n)' : false }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'tsproxy-runner-'))
  t.teardown(() => {
    for (const line of survivors().split('\n').filter(Boolean)) process.kill(Number(line.split(' ')[0]), 'SIGKILL')
    rmSync(work, { recursive: true, force: true })
  })
  const lock = join(work, 'xtables.lock')
  const file = (name: string, body: string): string => {
    writeFileSync(join(work, name), `LOCK=${lock}\n${body}\n`)
    return join(work, name)
  }
  const files = [
    // killed by the timeout; a child in its group, and one that left the
    // group (setsid) holding the lock
    file('hang.sh', [
      `${sleep(7301)} &`,
      `setsid sh -c 'exec 9>"$0"; flock 9; exec ${sleep(7302)}' "$LOCK" &`,
      'while ! [ -e "$LOCK" ] || flock -n "$LOCK" true; do sleep 0.05; done', // the holder has it
      'echo "ok 1 - holding"',
      sleep(7303),
    ].join('\n')),
    // exits 0, leaving a child behind
    file('leaky.sh', `flock -n "$LOCK" true || exit 3\n${sleep(7304)} &\necho "ok 1"`),
    // sees none of that
    file('next.sh', `flock -n "$LOCK" true || exit 4\n! pgrep -f '${MARK}' || exit 5\necho "ok 1"`),
  ]
  const script = ktestScript({ files, work, command: ['sh'], timeoutS: 2, killAfterS: 2, lockFile: lock })
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, 0, `the script ran (${r.stderr.trim()})`)
  const read = (i: number, ext: string): string => readFileSync(join(work, `box-${i}.${ext}`), 'utf8').trim()
  t.equal(read(0, 'status'), '124', 'the hanging file was killed by its timeout')
  t.match(read(0, 'left'), new RegExp(`${sleep(7302).replace('.', '\\.')} \\(holds .*xtables\\.lock\\)`), 'the lock holder outside its group was found and killed')
  t.equal(read(1, 'status'), '0', 'the next file found the lock free')
  t.match(read(1, 'left'), sleep(7304), 'the child left by a file that exited is listed')
  t.equal(read(2, 'status'), '0', 'the file after that found the lock free and nothing left running')
  t.equal(read(2, 'left'), '', 'and left nothing itself')
  t.equal(survivors(), '', 'no stand-in process survives the script')
})
