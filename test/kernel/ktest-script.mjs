// The bash script that runs the kernel test files in the box (test/kernel.test.ts):
// every file, sequentially, each in a fresh netns and a process group of its
// own. Plain JavaScript so that test/unit/kernel-runner.test.ts can run it on
// the host with stand-in files.
//
// A file killed by its timeout, or one that exits leaving children behind,
// must not break the next one: what is left of it is killed, and whoever
// still holds the xtables lock too (a file's iptables child holding it made
// the next file's commits time out). Both are recorded in "$W/box-<i>.left"
// (one "pid command" line each) for the runner to report.

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`

/**
 * @param {object} o
 * @param {string[]} o.files       the files, each passed as the last word of `command`
 * @param {string} o.work          where box-<i>.{tap,err,status,left} go
 * @param {string[]} o.command     the command that runs one file (e.g. node + loader)
 * @param {number} o.timeoutS      seconds before a file is sent SIGTERM (its group)
 * @param {number} [o.killAfterS]  then seconds before SIGKILL
 * @param {string} [o.lockFile]    the xtables lock to check after each file
 */
export function ktestScript({ files, work, command, timeoutS, killAfterS = 10, lockFile = '/run/xtables.lock' }) {
  return [
    'W=' + q(work),
    'L=' + q(lockFile),
    // the processes that have the lock file open (flock locks live with open files)
    'lockers() {',
    '  local f',
    '  [ -e "$L" ] || return 0',
    '  for f in /proc/[0-9]*/fd/*; do',
    '    [ "$(readlink "$f" 2>/dev/null)" = "$L" ] && f=${f#/proc/} && echo "${f%%/*}"',
    '  done | sort -u',
    '}',
    'one() {',
    '  local s=$(date +%s%3N) rc p',
    // coreutils timeout: one hung file must not eat the whole suite (exit 124);
    // not --foreground, so it makes a process group (id: its pid) and signals all of it
    `  timeout -k ${killAfterS} ${timeoutS} unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\`,
    `    ${command.map(q).join(' ')} "$2" \\`,
    '    >"$W/box-$1.tap" 2>"$W/box-$1.err" </dev/null &',
    '  local pg=$!',
    '  wait $pg',
    '  rc=$?',
    '  echo $rc >"$W/box-$1.status"',
    '  {',
    '    pgrep -a -g $pg',
    '    kill -KILL -- -$pg 2>/dev/null',
    '    if [ -e "$L" ] && ! flock -n "$L" true; then',
    '      for p in $(lockers); do',
    '        echo "$p $(tr "\\0" " " </proc/$p/cmdline 2>/dev/null)(holds $L)"',
    '        kill -KILL $p 2>/dev/null',
    '      done',
    '      flock -w 10 "$L" true', // the lock is free once they are gone
    '    fi',
    '  } >"$W/box-$1.left"',
    '  echo "ktest-done $2: exit $rc, $(( $(date +%s%3N) - s )) ms"',
    '}',
    ...files.map((f, i) => `one ${i} ${q(f)}`),
    '',
  ].join('\n')
}
