// What the source tests hand a source: a ChangeSink that records each event as
// a line, and a Log that keeps its lines instead of printing them.
import type { ChangeSink } from '../../dist/proxy/changes.js'
import type { EndpointSlice, ServiceObject } from '../../dist/proxy/model/index.js'
import type { Log } from '../../dist/proxy/types.js'

type Obj = ServiceObject | EndpointSlice

/** 'Service ns/name': how an event names its object unless told otherwise. */
export const kindAndName = (o: Obj): string => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`

/** A sink that records events as 'add Service ns/name', 'update …', 'delete …' lines. */
export function recorder(label: (o: Obj) => string = kindAndName): ChangeSink & { events: string[] } {
  const events: string[] = []
  const ev = (p: Obj | undefined, c: Obj | undefined): void => {
    events.push(`${p && c ? 'update' : c ? 'add' : 'delete'} ${label((c ?? p)!)}`)
  }
  return { events, service: ev, endpointSlice: ev }
}

export interface LogLine {
  level: string
  msg: string
  fields?: Record<string, unknown>
}

/** A Log that keeps what it is told in `lines`. */
export function quietLog(): Log & { lines: LogLine[] } {
  const lines: LogLine[] = []
  const log = ((level, msg, fields) => void lines.push({ level, msg, fields })) as Log & { lines: LogLine[] }
  log.lines = lines
  return log
}
