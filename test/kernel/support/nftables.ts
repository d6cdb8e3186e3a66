// What the nftables kernel tests need of the kernel they run on.
import { execFileSync } from 'node:child_process'
import { Nftables, NetlinkError } from '../../../dist/index.js'
import { rejection } from './assert.js'

/**
 * Why nftables tests cannot run here, or false: the nft tool (the oracle) must be
 * installed and the kernel must have the ip family (the box's has not: EOPNOTSUPP).
 * Probed with one transaction that adds and deletes a table (nothing is left).
 */
export async function nftablesUnsupported(): Promise<string | false> {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'the nft tool (package nftables) is not installed: it is the oracle'
  }
  const nft = await Nftables.open()
  try {
    const err = await rejection(nft.transaction().addTable({ family: 'ip', name: 'tsproxy-probe' }).deleteTable({ family: 'ip', name: 'tsproxy-probe' }).commit())
    if (err instanceof NetlinkError) return `this kernel has no nf_tables ip family (${err.code}): the host's has`
    if (err) throw err
  } finally {
    await nft.close()
  }
  return false
}
