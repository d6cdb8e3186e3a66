// The proxy's model: Kubernetes objects as the API shapes them (service.ts,
// endpointslice.ts), and what the proxiers consume (serviceport.ts, endpoints.ts,
// topology.ts).
export * from './service.js'
export * from './endpointslice.js'
export * from './serviceport.js'
export * from './endpoints.js'
export * from './topology.js'
export { canonicalIP, joinHostPort, samePlain, type IPFamily, type ObjectMeta } from './fields.js'
