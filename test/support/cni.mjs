// A fake CNI for end-to-end tests of the proxy inside the kernel box (see
// test/kernel/README.md), plus the traffic tools to drive it. Run as root, in
// the network namespace the node should live in (a ktest's own, fresh one).
//
//   const node = await makeNode({ pods: [{ name: 'web-0', ip: '10.244.0.10' }, ...] })
//   await node.request('web-0', { host: '10.96.0.10', port: 80 })   // { ok: true, body: 'web-1' }
//   await node.destroy()
//
// Dual-stack: give gateway6 (and pods an ip6 each, all in gateway6/prefix6):
//   makeNode({ gateway6: 'fd00:10:244::1', pods: [{ name: 'web-0', ip: '10.244.0.10', ip6: 'fd00:10:244::a' }] })
//
// The node: a bridge holding the gateway address; per pod a network namespace
// named after the pod, a veth pair (eth0 inside, `<bridge>-<i>` on the bridge,
// hairpin mode on), lo up and a default route via the gateway. ip_forward is 1
// and, when br_netfilter is loaded, bridge-nf-call-iptables is 1 (the bridge's
// frames go through iptables and IPVS, as kube-proxy needs).
// With gateway6 the bridge also holds gateway6/prefix6, each pod with an ip6
// holds it on eth0 with a default IPv6 route via gateway6 (addresses nodad: no
// duplicate address detection to wait for), net.ipv6.conf.all.forwarding is 1
// and, with br_netfilter, bridge-nf-call-ip6tables is 1. destroy() puts every
// sysctl it changed back.
// Each pod runs one node process, cni-agent.mjs: HTTP on 8080 and a UDP echo on
// 5353 answering the pod's name (both on IPv4 and IPv6), and a client the test
// sends requests through.
// The CNI side is made with the `ip` tool (never with the library under test);
// one `ip -batch` for the node side and one per pod.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { isIPv4, isIPv6 } from 'node:net'
import { fileURLToPath } from 'node:url'
import { HTTP_PORT, UDP_PORT, runCommand } from './cni-agent.mjs'

const AGENT = fileURLToPath(new URL('./cni-agent.mjs', import.meta.url))

// ---- tools ----------------------------------------------------------------------------------

function toolError(cmd, args, e) {
  const stderr = String(e.stderr ?? '').trim()
  const err = new Error(`${cmd} ${args.join(' ')}: ${stderr || e.message}`)
  err.status = e.status ?? null
  err.stdout = String(e.stdout ?? '')
  err.stderr = stderr
  return err
}

/** Runs a standard tool (ipvsadm, ipset, iptables-legacy-save, ip, ...) and returns its stdout; throws with its stderr. */
export function tool(cmd, args = [], options = {}) {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.input === undefined ? {} : { input: options.input }),
    })
  } catch (e) {
    throw toolError(cmd, args, e)
  }
}

/** Runs a shell script (sh -ec) and returns its stdout; throws with its stderr. */
export function sh(script) {
  return tool('sh', ['-ec', script])
}

/**
 * Pods named `${letter}1`, `${letter}2`, ... at 10.244.0.<first>, <first + 1>, ...
 * (in makeNode's default 10.244.0.1/24); dualStack: each also at
 * fd00:10:244::<the same digits> (for gateway6 'fd00:10:244::1').
 */
export function numberedPods(letter, first, { count = 3, dualStack = false } = {}) {
  return Array.from({ length: count }, (_, i) => ({
    name: `${letter}${i + 1}`,
    ip: `10.244.0.${first + i}`,
    ...(dualStack ? { ip6: `fd00:10:244::${first + i}` } : {}),
  }))
}

/** Async spawn: { code, stdout, stderr }; never rejects (a spawn error is code 127). */
function runAsync(cmd, args, input) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    child.on('error', (e) => resolve({ code: 127, stdout, stderr: stderr + e.message }))
    child.on('close', (code, signal) => resolve({ code: code ?? 128, signal, stdout, stderr }))
    child.stdin.on('error', () => {})
    child.stdin.end(input ?? '')
  })
}

/**
 * `ip [-n netns] -batch -` over `lines`. Resolves how many lines took effect:
 * all of them, or (ip stops at the first failure) those before the failed one,
 * with the error.
 */
async function ipBatch(lines, { netns, force = false } = {}) {
  if (!lines.length) return { done: 0 }
  const args = [...(netns ? ['-n', netns] : []), ...(force ? ['-force'] : []), '-batch', '-']
  const r = await runAsync('ip', args, lines.join('\n') + '\n')
  if (r.code === 0) return { done: lines.length }
  const m = /Command failed -:(\d+)/.exec(r.stderr)
  const done = m ? Number(m[1]) - 1 : 0
  return { done, error: new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}${m ? ` (at: ${lines[done]})` : ''}`) }
}

function ipBatchSync(lines) {
  if (!lines.length) return
  try {
    execFileSync('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] })
  } catch {
    // best effort: used at process exit only
  }
}

// ---- sysctls (through /proc/sys, which shows the opener's network namespace) ------------------

const sysctlPath = (key) => `/proc/sys/${key.replace(/\./g, '/')}`
const readKey = (key) => readFileSync(sysctlPath(key), 'utf8').trim()
const writeKey = (key, value) => writeFileSync(sysctlPath(key), `${value}\n`)

// ---- the pods' agents -----------------------------------------------------------------------

class Agent {
  constructor(name) {
    this.name = name
    this.child = null
    this.pid = null
    this.nextId = 1
    this.pending = new Map()
    this.stderrTail = ''
  }

  get running() {
    return this.child !== null
  }

  /** Spawns the agent in the pod's netns; resolves once it says ready. */
  start(timeoutMs) {
    if (this.child) return Promise.reject(new Error(`pod ${this.name}: agent already running`))
    const env = { ...process.env }
    delete env.NODE_OPTIONS
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, AGENT, this.name], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env,
    })
    this.child = child
    this.stderrTail = ''
    child.stdin.on('error', () => {})
    child.stderr.setEncoding('utf8').on('data', (d) => (this.stderrTail = (this.stderrTail + d).slice(-2000)))
    const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
    this.exited = exited
    return new Promise((resolve, reject) => {
      let ready = false
      const fail = (why) => {
        if (ready) return
        ready = true
        clearTimeout(timer)
        reject(new Error(`pod ${this.name}: agent ${why}${this.stderrTail ? `; stderr: ${this.stderrTail.trim()}` : ''}`))
      }
      const timer = setTimeout(() => {
        fail(`not ready after ${timeoutMs} ms`)
        child.kill('SIGKILL')
      }, timeoutMs)
      let buf = ''
      child.stdout.setEncoding('utf8').on('data', (chunk) => {
        buf += chunk
        let nl
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          let msg
          try {
            msg = JSON.parse(line)
          } catch {
            continue
          }
          if (msg.ready && !ready) {
            ready = true
            clearTimeout(timer)
            this.pid = msg.pid
            resolve()
          } else if (msg.id != null) {
            const p = this.pending.get(msg.id)
            if (p) {
              this.pending.delete(msg.id)
              clearTimeout(p.timer)
              const { id: _id, ...result } = msg
              p.resolve(result)
            }
          }
        }
      })
      child.on('error', (e) => fail(`could not start: ${e.message}`))
      exited.then(({ code, signal }) => {
        if (this.child === child) {
          this.child = null
          this.pid = null
        }
        fail(`exited (${signal ?? `status ${code}`}) before it was ready`)
        for (const [id, p] of this.pending) {
          this.pending.delete(id)
          clearTimeout(p.timer)
          p.resolve({ ok: false, error: `pod ${this.name}: agent exited` })
        }
      })
    })
  }

  /** Sends one command; resolves its result, never rejects. */
  ask(cmd, timeoutMs) {
    if (!this.child) return Promise.resolve({ ok: false, error: `pod ${this.name}: agent not running` })
    const id = this.nextId++
    return new Promise((resolve) => {
      // the agent times the request out itself; this only guards against a stuck agent
      const timer = setTimeout(() => {
        this.pending.delete(id)
        resolve({ ok: false, error: `pod ${this.name}: agent did not answer in ${timeoutMs + 10000} ms` })
      }, timeoutMs + 10000)
      this.pending.set(id, { resolve, timer })
      this.child.stdin.write(JSON.stringify({ id, ...cmd }) + '\n')
    })
  }

  /** Kills the agent (SIGKILL: its sockets close at once); resolves once it is gone. */
  async stop() {
    const child = this.child
    if (!child) return
    child.kill('SIGKILL')
    await this.exited
  }

  killSync() {
    if (this.child) this.child.kill('SIGKILL')
  }
}

// ---- the node -------------------------------------------------------------------------------

const live = new Set()
let exitHook = false

function ensureExitHook() {
  if (exitHook) return
  exitHook = true
  // A test that crashed before destroy(): kill the agents, undo the links and namespaces.
  process.on('exit', () => {
    for (const node of live) node._destroySync()
  })
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/

function ipToInt(ip) {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0)
}

/** An IPv6 address as a BigInt (isIPv6 already checked; an embedded IPv4 tail is allowed). */
function ip6ToBigInt(ip) {
  let s = ip
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (v4) {
    const n = ipToInt(v4[1])
    s = s.slice(0, -v4[1].length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`
  }
  const [head, tail] = s.split('::')
  const h = head ? head.split(':') : []
  const tl = tail === undefined ? [] : tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl]
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n)
}

function validate6({ gateway6, prefix6, pods }) {
  if (gateway6 === undefined) {
    const p = pods.find((x) => x && x.ip6 !== undefined)
    if (p) throw new Error(`makeNode: pod ${p.name}: ip6 without gateway6`)
    return
  }
  if (!isIPv6(gateway6)) throw new Error(`makeNode: gateway6 ${JSON.stringify(gateway6)} is not an IPv6 address`)
  if (!Number.isInteger(prefix6) || prefix6 < 8 || prefix6 > 126) throw new Error(`makeNode: prefix6 ${prefix6}: 8-126`)
  const shift = BigInt(128 - prefix6)
  const net = ip6ToBigInt(gateway6) >> shift
  const seen = new Set([ip6ToBigInt(gateway6)])
  for (const p of pods) {
    if (p.ip6 === undefined) continue
    if (typeof p.ip6 !== 'string' || !isIPv6(p.ip6)) throw new Error(`makeNode: pod ${p.name}: ip6 ${JSON.stringify(p.ip6)} is not an IPv6 address`)
    const n = ip6ToBigInt(p.ip6)
    if (n >> shift !== net) throw new Error(`makeNode: pod ${p.name}: ${p.ip6} is not in ${gateway6}/${prefix6}`)
    if (seen.has(n)) throw new Error(`makeNode: pod ${p.name} ${p.ip6}: address used twice`)
    seen.add(n)
  }
}

function validate({ bridge, gateway, prefix, pods }) {
  if (!/^[A-Za-z0-9_.-]{1,12}$/.test(bridge)) throw new Error(`makeNode: bridge name ${JSON.stringify(bridge)}: 1-12 characters of [A-Za-z0-9_.-]`)
  if (!isIPv4(gateway)) throw new Error(`makeNode: gateway ${JSON.stringify(gateway)} is not an IPv4 address`)
  if (!Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new Error(`makeNode: prefix ${prefix}: 8-30`)
  if (!Array.isArray(pods) || pods.length === 0) throw new Error('makeNode: pods: at least one { name, ip }')
  if (pods.length > 99) throw new Error('makeNode: at most 99 pods')
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  const net = (ipToInt(gateway) & mask) >>> 0
  const seen = new Set([gateway])
  for (const p of pods) {
    if (!p || typeof p.name !== 'string' || !NAME.test(p.name)) throw new Error(`makeNode: pod name ${JSON.stringify(p?.name)}: a DNS label of up to 32 characters`)
    if (!isIPv4(p.ip)) throw new Error(`makeNode: pod ${p.name}: ip ${JSON.stringify(p.ip)} is not an IPv4 address`)
    if (((ipToInt(p.ip) & mask) >>> 0) !== net) throw new Error(`makeNode: pod ${p.name}: ${p.ip} is not in ${gateway}/${prefix}`)
    if (seen.has(p.name) || seen.has(p.ip)) throw new Error(`makeNode: pod ${p.name} ${p.ip}: name or address used twice`)
    seen.add(p.name)
    seen.add(p.ip)
  }
}

/**
 * Builds the node (see the top of this file). On any failure, undoes what it
 * made and rejects.
 */
export async function makeNode(options = {}) {
  const { bridge = 'cbr0', gateway = '10.244.0.1', prefix = 24, gateway6, prefix6 = 64, pods = [], hairpin = true, readyTimeoutMs = 60000 } = options
  validate({ bridge, gateway, prefix, pods })
  validate6({ gateway6, prefix6, pods })
  const node = new Node({ bridge, gateway, prefix, gateway6, prefix6, hairpin, pods })
  try {
    await node._build(readyTimeoutMs)
  } catch (e) {
    try {
      await node.destroy()
    } catch (e2) {
      e.message += ` (and cleaning up after it: ${e2.message})`
    }
    throw e
  }
  return node
}

class Node {
  constructor({ bridge, gateway, prefix, gateway6, prefix6, hairpin, pods }) {
    this.bridge = bridge
    this.gateway = gateway
    this.prefix = prefix
    // only on a dual-stack node, as on its pods: a v4-only node looks as it always did
    if (gateway6 !== undefined) {
      this.gateway6 = gateway6
      this.prefix6 = prefix6
    }
    this.hairpin = hairpin
    this.pods = Object.freeze(
      pods.map((p, i) => Object.freeze({ name: p.name, ip: p.ip, ...(p.ip6 === undefined ? {} : { ip6: p.ip6 }), veth: `${bridge}-${i}` })),
    )
    this.brNetfilter = existsSync('/sys/module/br_netfilter')
    this.timings = { setupMs: 0, agentsMs: 0 }
    this._agents = new Map(this.pods.map((p) => [p.name, new Agent(p.name)]))
    this._undo = [] // ip batch lines, in the order the things were made
    this._sysctls = [] // [key, old value]
    this._destroyed = false
    live.add(this)
    ensureExitHook()
  }

  async _build(readyTimeoutMs) {
    const t0 = Date.now()
    this._setSysctl('net.ipv4.ip_forward', '1')
    if (this.brNetfilter) this._setSysctl('net.bridge.bridge-nf-call-iptables', '1')
    if (this.gateway6 !== undefined) {
      this._setSysctl('net.ipv6.conf.all.forwarding', '1')
      if (this.brNetfilter) this._setSysctl('net.bridge.bridge-nf-call-ip6tables', '1')
    }

    // [line, its undo]; ip stops at the first failing line, and we undo only what came before
    const steps = []
    for (const p of this.pods) steps.push([`netns add ${p.name}`, `netns del ${p.name}`])
    steps.push([`link add ${this.bridge} type bridge`, `link del ${this.bridge}`])
    steps.push([`addr add ${this.gateway}/${this.prefix} dev ${this.bridge}`])
    if (this.gateway6 !== undefined) steps.push([`addr add ${this.gateway6}/${this.prefix6} dev ${this.bridge} nodad`])
    steps.push([`link set ${this.bridge} up`])
    for (const p of this.pods) {
      steps.push([`link add ${p.veth} type veth peer name eth0 netns ${p.name}`, `link del ${p.veth}`])
      steps.push([`link set ${p.veth} master ${this.bridge}`])
      if (this.hairpin) steps.push([`link set ${p.veth} type bridge_slave hairpin on`])
      steps.push([`link set ${p.veth} up`])
    }
    const r = await ipBatch(steps.map((s) => s[0]))
    for (const [, undo] of steps.slice(0, r.done)) if (undo) this._undo.push(undo)
    if (r.error) throw r.error

    const inPod = (p) => [
      'link set lo up',
      `addr add ${p.ip}/${this.prefix} dev eth0`,
      ...(p.ip6 === undefined ? [] : [`addr add ${p.ip6}/${this.prefix6} dev eth0 nodad`]),
      'link set eth0 up',
      `route add default via ${this.gateway}`,
      ...(p.ip6 === undefined ? [] : [`route add ::/0 via ${this.gateway6} dev eth0`]),
    ]
    const results = await Promise.all(this.pods.map((p) => ipBatch(inPod(p), { netns: p.name })))
    const failed = results.find((x) => x.error)
    if (failed) throw failed.error
    const t1 = Date.now()
    this.timings.setupMs = t1 - t0

    // every agent at once: a node start is slow in the box, and they overlap
    const started = await Promise.allSettled([...this._agents.values()].map((a) => a.start(readyTimeoutMs)))
    const bad = started.find((x) => x.status === 'rejected')
    if (bad) throw bad.reason
    this.timings.agentsMs = Date.now() - t1
  }

  _setSysctl(key, value) {
    const old = readKey(key)
    if (old === value) return
    this._sysctls.push([key, old])
    writeKey(key, value)
  }

  _agent(name) {
    const a = this._agents.get(name)
    if (!a) throw new Error(`no pod ${JSON.stringify(name)} on this node (pods: ${[...this._agents.keys()].join(', ')})`)
    return a
  }

  pod(name) {
    const p = this.pods.find((x) => x.name === name)
    if (!p) throw new Error(`no pod ${JSON.stringify(name)} on this node`)
    return p
  }

  /** Whether the pod's agent runs (stopPod/startPod). */
  isRunning(name) {
    return this._agent(name).running
  }

  /**
   * One request from a pod (through its agent) or from 'node' (this process,
   * in this network namespace), to an IPv4 or IPv6 host (bare or in
   * brackets). Resolves { ok: true, body, status? } or { ok: false, error };
   * never rejects.
   */
  async request(from, opts) {
    const { host, proto = 'http', path = '/', timeoutMs = 3000, payload } = opts ?? {}
    const port = opts?.port ?? (proto === 'udp' ? UDP_PORT : HTTP_PORT)
    if (proto !== 'http' && proto !== 'udp') return { ok: false, error: `proto ${JSON.stringify(proto)}: 'http' or 'udp'` }
    const cmd = proto === 'http' ? { op: 'http', host, port, path, timeoutMs } : { op: 'udp', host, port, timeoutMs, ...(payload === undefined ? {} : { payload }) }
    if (from === 'node') return runCommand(cmd)
    const agent = this._agents.get(from)
    if (!agent) return { ok: false, error: `no pod ${JSON.stringify(from)} on this node` }
    return agent.ask(cmd, timeoutMs)
  }

  /**
   * n requests, at most `concurrency` (default 1) in flight: every result in
   * order, the bodies of those that succeeded, the errors of those that did
   * not, and how many times each body came back.
   */
  async requestMany(from, opts, n, { concurrency = 1 } = {}) {
    const results = new Array(n)
    let next = 0
    const worker = async () => {
      while (next < n) {
        const i = next++
        results[i] = await this.request(from, opts)
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker))
    const bodies = []
    const errors = []
    const counts = {}
    for (const r of results) {
      if (r.ok) {
        bodies.push(r.body)
        counts[r.body] = (counts[r.body] ?? 0) + 1
      } else errors.push(r.error)
    }
    return { results, bodies, errors, counts }
  }

  /** Kills the pod's agent: nothing listens on its ports any more (connections are refused). */
  async stopPod(name) {
    await this._agent(name).stop()
  }

  /** Starts the pod's agent again (after stopPod); resolves once it serves. */
  async startPod(name, { readyTimeoutMs = 60000 } = {}) {
    await this._agent(name).start(readyTimeoutMs)
  }

  /**
   * Removes everything makeNode made: agents, veths, the bridge, the pods'
   * namespaces, and puts the sysctls back. Goes on past failures, then throws
   * one error naming them. Idempotent.
   */
  async destroy() {
    if (this._destroyed) return
    this._destroyed = true
    live.delete(this)
    const problems = []
    await Promise.all([...this._agents.values()].map((a) => a.stop().catch((e) => problems.push(e.message))))
    // in reverse: the veths first (a pair goes at once, while a deleted netns
    // frees its end only later), then the bridge, then the namespaces
    const undo = [...this._undo].reverse()
    this._undo = []
    if (undo.length) {
      const r = await runAsync('ip', ['-force', '-batch', '-'], undo.join('\n') + '\n')
      if (r.code !== 0) problems.push(`ip -force -batch: ${r.stderr.trim()}`)
    }
    for (const [key, old] of this._sysctls.reverse()) {
      try {
        writeKey(key, old)
      } catch (e) {
        problems.push(`${key}: ${e.message}`)
      }
    }
    this._sysctls = []
    if (problems.length) throw new Error(`destroy: ${problems.join('; ')}`)
  }

  _destroySync() {
    for (const a of this._agents.values()) a.killSync()
    ipBatchSync([...this._undo].reverse())
    for (const [key, old] of this._sysctls.reverse()) {
      try {
        writeKey(key, old)
      } catch {
        // best effort
      }
    }
  }
}
