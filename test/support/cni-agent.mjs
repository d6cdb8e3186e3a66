// The one process of a fake pod (see cni.mjs): run as
//   ip netns exec <pod> node cni-agent.mjs <name>
// it serves, in its pod's network namespace, on IPv4 and IPv6 alike (one
// dual-stack socket each, bound to '::'; IPv4 only where the kernel has no IPv6),
//   HTTP on 8080: its pod name; /slow?ms=N the same after N ms (an open
//     connection to hold); /whoami the client's address as the pod sees it,
//     'a.b.c.d:port' or '[v6]:port' (never the IPv4-mapped '::ffff:a.b.c.d')
//   UDP echo on 5353: its pod name; to a datagram 'whoami', the sender's
//     address in the same form
// and acts as a client: JSON-line commands on stdin (host IPv4 or IPv6, the
// latter bare or in brackets)
//   {id, op:'http', host, port, path?, timeoutMs?}  {id, op:'udp', host, port, payload?, timeoutMs?}
// answered by JSON lines on stdout: {id, ok:true, body, status?} or {id, ok:false, error}.
// The first line it writes is {ready:true, name, pid}, once both servers listen.
// It exits when stdin ends (its parent is gone), so a crashed test leaves no agents.
// Imported (by cni.mjs), it only exports the client functions, for requests
// made from the node itself.
import { createServer, request as httpRequest } from 'node:http'
import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const HTTP_PORT = 8080
export const UDP_PORT = 5353

const errorText = (e) => (e && (e.code || e.message)) || String(e)

/** '[fd00::1]' -> 'fd00::1'; anything else as it is. */
const bareHost = (host) => (typeof host === 'string' && /^\[.*\]$/.test(host) ? host.slice(1, -1) : host)

/** One HTTP GET on a fresh connection. Resolves {ok, body|error}; never rejects. */
export function httpGet({ host: given, port = HTTP_PORT, path = '/', timeoutMs = 3000 }) {
  const host = bareHost(given)
  return new Promise((resolve) => {
    let done = false
    const finish = (r) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(r)
    }
    const timer = setTimeout(() => {
      req.destroy()
      finish({ ok: false, error: `ETIMEDOUT: no answer in ${timeoutMs} ms` })
    }, timeoutMs)
    // an IPv6 literal connects over IPv6 (node puts it in brackets in the Host header)
    const req = httpRequest({ host, port, path, agent: false, ...(isIPv6(host) ? { family: 6 } : {}) }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => finish({ ok: true, status: res.statusCode, body }))
      res.on('error', (e) => finish({ ok: false, error: errorText(e) }))
    })
    req.on('error', (e) => finish({ ok: false, error: errorText(e) }))
    req.end()
  })
}

/** One datagram, waits for the first answer. Resolves {ok, body|error}; never rejects. */
export function udpAsk({ host: given, port = UDP_PORT, payload = 'ping', timeoutMs = 3000 }) {
  const host = bareHost(given)
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
    let done = false
    const finish = (r) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.close()
      resolve(r)
    }
    const timer = setTimeout(() => finish({ ok: false, error: `ETIMEDOUT: no answer in ${timeoutMs} ms` }), timeoutMs)
    sock.on('message', (msg) => finish({ ok: true, body: msg.toString('utf8') }))
    // an ICMP port unreachable comes back as ECONNREFUSED on a connected socket
    sock.on('error', (e) => finish({ ok: false, error: errorText(e) }))
    sock.connect(port, host, () => sock.send(payload))
  })
}

export function runCommand(cmd) {
  if (cmd.op === 'http') return httpGet(cmd)
  if (cmd.op === 'udp') return udpAsk(cmd)
  return Promise.resolve({ ok: false, error: `unknown op ${JSON.stringify(cmd.op)}` })
}

/** The peer as 'a.b.c.d:port' or '[v6]:port'; an IPv4-mapped IPv6 address ('::ffff:a.b.c.d') as the IPv4 one. */
export function hostPort(address, port) {
  const a = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')
  return isIPv6(a) ? `[${a}]:${port}` : `${a}:${port}`
}

/** Binds on '::' (both families), or on '0.0.0.0' when the kernel has no IPv6. */
function listenBoth(bindOn, done) {
  bindOn('::', (e) => {
    if (!e) return done()
    if (e.code !== 'EAFNOSUPPORT' && e.code !== 'EADDRNOTAVAIL') throw e
    bindOn('0.0.0.0', (e2) => {
      if (e2) throw e2
      done()
    })
  })
}

function serve(name) {
  const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/whoami') return res.end(hostPort(req.socket.remoteAddress ?? '?', req.socket.remotePort))
    if (url.pathname === '/slow') {
      const ms = Number(url.searchParams.get('ms') ?? 1000)
      res.flushHeaders()
      const timer = setTimeout(() => res.end(name), ms)
      res.on('close', () => clearTimeout(timer))
      return
    }
    res.end(name)
  })
  http.keepAliveTimeout = 1000
  let udp = null
  const onMessage = (msg, rinfo) => {
    const answer = msg.toString('utf8') === 'whoami' ? hostPort(rinfo.address, rinfo.port) : name
    // to rinfo.address as it came: on the dual-stack socket an IPv4 sender is '::ffff:a.b.c.d'
    udp.send(answer, rinfo.port, rinfo.address)
  }
  let pending = 2
  const up = () => {
    if (--pending === 0) write({ ready: true, name, pid: process.pid })
  }
  listenBoth((address, cb) => {
    const onError = (e) => cb(e)
    http.once('error', onError)
    http.listen({ port: HTTP_PORT, host: address, ipv6Only: false }, () => {
      http.off('error', onError)
      cb()
    })
  }, up)
  listenBoth((address, cb) => {
    const sock = createSocket({ type: address === '::' ? 'udp6' : 'udp4', ipv6Only: false })
    const onError = (e) => {
      sock.close()
      cb(e)
    }
    sock.once('error', onError)
    sock.bind(UDP_PORT, address, () => {
      sock.off('error', onError)
      udp = sock
      sock.on('message', onMessage)
      cb()
    })
  }, up)

  let buf = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    buf += chunk
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (!line.trim()) continue
      let cmd
      try {
        cmd = JSON.parse(line)
      } catch (e) {
        write({ id: null, ok: false, error: `bad command line: ${errorText(e)}` })
        continue
      }
      runCommand(cmd).then((r) => write({ id: cmd.id, ...r }))
    }
  })
  process.stdin.on('end', () => process.exit(0))
}

const isMain = (() => {
  try {
    return fileURLToPath(import.meta.url) === realpathSync(process.argv[1] ?? '')
  } catch {
    return false
  }
})()
if (isMain) {
  const name = process.argv[2]
  if (!name) {
    process.stderr.write('usage: cni-agent.mjs <pod name>\n')
    process.exit(2)
  }
  serve(name)
}
