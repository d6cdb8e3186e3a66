// One chain of libiptc jobs per address family: libiptc is not thread-safe
// (native/iptc holds a mutex per library), and a job waiting on that mutex
// would only hold a thread of libuv's pool. Everything in lib/ that reaches
// native/iptc goes through here.
import { Serial } from '../serial.js'

const queues = { 4: new Serial(), 6: new Serial() }

export function enqueue<T>(family: 4 | 6, job: () => Promise<T>): Promise<T> {
  return queues[family].run(job)
}
