// Where the API server is and how to authenticate to it: a kubeconfig file
// (as kubectl and kube-proxy read it), --master alone, or the pod's service
// account (in-cluster), resolved as kube-proxy does. Settings that cannot be
// honoured are refused with a KubeConfigError naming the field.
//
// Not supported: exec and auth-provider credential plugins, basic auth,
// proxy-url.
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { isObject } from '../../model/fields.js'
import { LimitError, MAX_CONFIG_BYTES } from '../../limits.js'
import { yamlValue } from '../../yaml.js'

/** Where the in-cluster credentials live (a pod's service account volume). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** A connection setting is missing or wrong; names the file (or 'in-cluster') and the field. */
export class KubeConfigError extends Error {
  override name = 'KubeConfigError'
  /** The kubeconfig file, or 'in-cluster'. */
  readonly source: string
  /** The field, as the kubeconfig spells it ('users["admin"].user.client-key-data'), or the environment variable / file. */
  readonly field: string

  constructor(source: string, field: string, reason: string, cause?: unknown) {
    super(`${source}: ${field} ${reason}`, cause === undefined ? undefined : { cause })
    this.source = source
    this.field = field
  }
}

/** The API server answered with an error (or a request failed before any answer: status 0). */
export interface KubeConnection {
  /** The server's base URL ('https://10.96.0.1:443', possibly with a path prefix). */
  server: string
  /** CA certificates (PEM) to trust; the system's when absent. */
  ca?: Buffer
  insecureSkipTLSVerify?: boolean
  /** The name to check the server certificate against, instead of the URL's host. */
  tlsServerName?: string
  /** A bearer token. */
  token?: string
  /** A file holding the bearer token, re-read periodically (service account tokens rotate). */
  tokenFile?: string
  /** Client certificate and key (PEM). */
  cert?: Buffer
  key?: Buffer
  /** The context's (or the service account's) namespace. */
  namespace?: string
}

// --- kubeconfig ---

interface Named {
  name: string
  value: Record<string, unknown>
}

function namedList(file: string, field: string, inner: string, value: unknown): Named[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw new KubeConfigError(file, field, 'must be a list')
  return value.map((item, i) => {
    if (!isObject(item)) throw new KubeConfigError(file, `${field}[${i}]`, 'must be a mapping')
    if (typeof item.name !== 'string' || item.name === '') throw new KubeConfigError(file, `${field}[${i}].name`, 'is required')
    const v = item[inner]
    if (v !== undefined && v !== null && !isObject(v)) throw new KubeConfigError(file, `${field}[${JSON.stringify(item.name)}].${inner}`, 'must be a mapping')
    return { name: item.name, value: (v ?? {}) as Record<string, unknown> }
  })
}

function optString(file: string, field: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string') throw new KubeConfigError(file, field, `must be a string (got ${typeof v})`)
  return v
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function base64Data(file: string, field: string, v: unknown): Buffer | undefined {
  const text = optString(file, field, v)
  if (text === undefined) return undefined
  const compact = text.replace(/\s+/g, '')
  if (!BASE64.test(compact) || compact.length % 4 !== 0) throw new KubeConfigError(file, field, 'is not valid base64')
  return Buffer.from(compact, 'base64')
}

function readPem(source: string, field: string, path: string, base: string): Buffer {
  const full = isAbsolute(path) ? path : resolve(base, path)
  try {
    return readFileSync(full)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new KubeConfigError(source, field, code === 'ENOENT' ? `names a missing file: ${full}` : `names a file that cannot be read: ${full} (${code ?? String(e)})`, e)
  }
}

function checkPem(source: string, field: string, data: Buffer, what: 'certificate' | 'key'): Buffer {
  const text = data.toString('latin1')
  const ok = what === 'certificate' ? text.includes('-----BEGIN CERTIFICATE-----') : /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
  if (!ok) throw new KubeConfigError(source, field, what === 'certificate' ? 'is not a PEM certificate' : 'is not a PEM private key')
  return data
}

function serverURL(source: string, field: string, text: string): string {
  let u: URL
  try {
    // kubectl accepts 'host:port' and means https.
    u = new URL(text.includes('://') ? text : `https://${text}`)
  } catch {
    throw new KubeConfigError(source, field, `is not a URL: ${JSON.stringify(text)}`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new KubeConfigError(source, field, `must be an http or https URL (got ${JSON.stringify(text)})`)
  return u.toString().replace(/\/$/, '')
}

export interface KubeconfigOptions {
  /** --master: overrides the cluster's server. */
  master?: string
  /** A context other than current-context. */
  context?: string
}

/** Reads a kubeconfig file (YAML or JSON): its current context's cluster and user; throws a KubeConfigError naming the field. */
export function loadKubeconfig(path: string, options: KubeconfigOptions = {}): KubeConnection {
  const file = resolve(path)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new KubeConfigError(file, 'kubeconfig', code === 'ENOENT' ? 'file does not exist' : `cannot be read (${code ?? String(e)})`, e)
  }
  if (text.length > MAX_CONFIG_BYTES) {
    const limit = new LimitError({ file, line: 1, limit: 'bytes', max: MAX_CONFIG_BYTES, found: text.length })
    throw new KubeConfigError(file, 'kubeconfig', limit.reason, limit)
  }
  let doc: unknown
  try {
    doc = yamlValue(text, { source: file })
  } catch (e) {
    if (e instanceof LimitError) throw new KubeConfigError(file, 'kubeconfig', `line ${e.line}: ${e.reason}`, e)
    throw new KubeConfigError(file, 'kubeconfig', `is not valid YAML: ${(e as Error).message}`, e)
  }
  return kubeconfigConnection(doc, file, options)
}

/** The connection a parsed kubeconfig describes; relative file paths resolve against `file`'s directory. */
export function kubeconfigConnection(doc: unknown, file: string, options: KubeconfigOptions = {}): KubeConnection {
  if (!isObject(doc)) throw new KubeConfigError(file, 'kubeconfig', 'must be a mapping')
  const base = dirname(file)
  const contextName = options.context ?? optString(file, 'current-context', doc['current-context'])
  if (contextName === undefined) throw new KubeConfigError(file, 'current-context', 'is not set (no context to use)')
  const contexts = namedList(file, 'contexts', 'context', doc.contexts)
  const context = contexts.find((c) => c.name === contextName)
  if (!context) throw new KubeConfigError(file, 'contexts', `has no context named ${JSON.stringify(contextName)}`)
  const cf = `contexts[${JSON.stringify(contextName)}].context`
  const clusterName = optString(file, `${cf}.cluster`, context.value.cluster)
  if (clusterName === undefined) throw new KubeConfigError(file, `${cf}.cluster`, 'is required')
  const cluster = namedList(file, 'clusters', 'cluster', doc.clusters).find((c) => c.name === clusterName)
  if (!cluster) throw new KubeConfigError(file, 'clusters', `has no cluster named ${JSON.stringify(clusterName)}`)
  const kf = `clusters[${JSON.stringify(clusterName)}].cluster`
  const c = cluster.value

  const conn: KubeConnection = { server: '' }
  const server = options.master ?? optString(file, `${kf}.server`, c.server)
  if (server === undefined) throw new KubeConfigError(file, `${kf}.server`, 'is required (or give --master)')
  conn.server = serverURL(file, options.master !== undefined ? '--master' : `${kf}.server`, server)
  if (c['proxy-url'] !== undefined && c['proxy-url'] !== null && c['proxy-url'] !== '') throw new KubeConfigError(file, `${kf}.proxy-url`, 'is not supported')
  const insecure = c['insecure-skip-tls-verify']
  if (insecure !== undefined && insecure !== null && typeof insecure !== 'boolean') throw new KubeConfigError(file, `${kf}.insecure-skip-tls-verify`, 'must be true or false')
  if (insecure === true) conn.insecureSkipTLSVerify = true
  const caData = base64Data(file, `${kf}.certificate-authority-data`, c['certificate-authority-data'])
  const caFile = optString(file, `${kf}.certificate-authority`, c['certificate-authority'])
  if (caData) conn.ca = checkPem(file, `${kf}.certificate-authority-data`, caData, 'certificate')
  else if (caFile) conn.ca = checkPem(file, `${kf}.certificate-authority`, readPem(file, `${kf}.certificate-authority`, caFile, base), 'certificate')
  if (conn.ca && conn.insecureSkipTLSVerify) throw new KubeConfigError(file, `${kf}.insecure-skip-tls-verify`, 'cannot be true when a certificate authority is given')
  const serverName = optString(file, `${kf}.tls-server-name`, c['tls-server-name'])
  if (serverName) conn.tlsServerName = serverName

  const namespace = optString(file, `${cf}.namespace`, context.value.namespace)
  if (namespace) conn.namespace = namespace

  const userName = optString(file, `${cf}.user`, context.value.user)
  if (userName !== undefined) {
    const user = namedList(file, 'users', 'user', doc.users).find((u) => u.name === userName)
    if (!user) throw new KubeConfigError(file, 'users', `has no user named ${JSON.stringify(userName)}`)
    const uf = `users[${JSON.stringify(userName)}].user`
    const u = user.value
    for (const unsupported of ['exec', 'auth-provider', 'username', 'password']) {
      if (u[unsupported] !== undefined && u[unsupported] !== null && u[unsupported] !== '')
        throw new KubeConfigError(file, `${uf}.${unsupported}`, 'is not supported (use a token, a token file or a client certificate)')
    }
    const token = optString(file, `${uf}.token`, u.token)
    const tokenFile = optString(file, `${uf}.tokenFile`, u.tokenFile)
    if (token) conn.token = token
    else if (tokenFile) {
      conn.tokenFile = isAbsolute(tokenFile) ? tokenFile : resolve(base, tokenFile)
      conn.token = readToken(file, `${uf}.tokenFile`, conn.tokenFile)
    }
    const certData = base64Data(file, `${uf}.client-certificate-data`, u['client-certificate-data'])
    const certFile = optString(file, `${uf}.client-certificate`, u['client-certificate'])
    const keyData = base64Data(file, `${uf}.client-key-data`, u['client-key-data'])
    const keyFile = optString(file, `${uf}.client-key`, u['client-key'])
    const certField = certData ? `${uf}.client-certificate-data` : `${uf}.client-certificate`
    const keyField = keyData ? `${uf}.client-key-data` : `${uf}.client-key`
    const cert = certData ?? (certFile ? readPem(file, certField, certFile, base) : undefined)
    const key = keyData ?? (keyFile ? readPem(file, keyField, keyFile, base) : undefined)
    if (cert && !key) throw new KubeConfigError(file, `${uf}.client-key`, 'is required with a client certificate (client-key or client-key-data)')
    if (key && !cert) throw new KubeConfigError(file, `${uf}.client-certificate`, 'is required with a client key (client-certificate or client-certificate-data)')
    if (cert && key) {
      conn.cert = checkPem(file, certField, cert, 'certificate')
      conn.key = checkPem(file, keyField, key, 'key')
    }
  }
  return conn
}

function readToken(source: string, field: string, path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new KubeConfigError(source, field, code === 'ENOENT' ? `names a missing file: ${path}` : `names a file that cannot be read: ${path} (${code ?? String(e)})`, e)
  }
  const token = text.trim()
  if (token === '') throw new KubeConfigError(source, field, `names an empty file: ${path}`)
  return token
}

export interface InClusterOptions {
  /** The environment to read KUBERNETES_SERVICE_HOST/PORT from (process.env). */
  env?: Record<string, string | undefined>
  /** The service account directory (SERVICE_ACCOUNT_DIR). */
  dir?: string
}

/** The pod's service account: KUBERNETES_SERVICE_HOST/PORT, its token (re-read as it rotates), ca.crt, namespace. */
export function inClusterConnection(options: InClusterOptions = {}): KubeConnection {
  const env = options.env ?? process.env
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  if (!host) throw new KubeConfigError('in-cluster', 'KUBERNETES_SERVICE_HOST', 'is not set (not running in a pod? give --kubeconfig or --master)')
  if (!port) throw new KubeConfigError('in-cluster', 'KUBERNETES_SERVICE_PORT', 'is not set')
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new KubeConfigError('in-cluster', 'KUBERNETES_SERVICE_PORT', `is not a port number (got ${JSON.stringify(port)})`)
  const tokenFile = resolve(dir, 'token')
  const token = readToken('in-cluster', 'token', tokenFile)
  const caFile = resolve(dir, 'ca.crt')
  const ca = checkPem('in-cluster', 'ca.crt', readPem('in-cluster', 'ca.crt', caFile, dir), 'certificate')
  const conn: KubeConnection = { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, ca, token, tokenFile }
  try {
    const ns = readFileSync(resolve(dir, 'namespace'), 'utf8').trim()
    if (ns) conn.namespace = ns
  } catch {
    // The namespace file is optional.
  }
  return conn
}

export interface ConnectionOptions {
  /** --kubeconfig (clientConnection.kubeconfig). */
  kubeconfig?: string
  /** --master. */
  master?: string
  inCluster?: InClusterOptions
}

/**
 * As kube-proxy decides: a kubeconfig when given (--master overriding its
 * server), else --master alone (no credentials), else the pod's service account.
 */
export function resolveConnection(options: ConnectionOptions): KubeConnection {
  if (options.kubeconfig) return loadKubeconfig(options.kubeconfig, options.master ? { master: options.master } : {})
  if (options.master) return { server: serverURL('--master', '--master', options.master) }
  return inClusterConnection(options.inCluster)
}

// --- the client ---
