// One chain of libiptc jobs per address family: libiptc is not thread-safe
// (native/iptc holds a mutex per library), and a job waiting on that mutex
// would only hold a thread of libuv's pool. Everything in lib/ that reaches
// native/iptc goes through here.
const queues = new Map<number, Promise<unknown>>()

export function enqueue<T>(family: 4 | 6, job: () => Promise<T>): Promise<T> {
  const prev = queues.get(family) ?? Promise.resolve()
  const next = prev.then(job, job)
  const settled = next.then(
    () => undefined,
    () => undefined,
  )
  queues.set(family, settled)
  void settled.then(() => {
    if (queues.get(family) === settled) queues.delete(family)
  })
  return next
}
