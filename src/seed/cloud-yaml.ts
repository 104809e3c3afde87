// YAML for cloud-init's loader. cloud-init reads YAML with PyYAML, which implements
// YAML 1.1: there an unquoted 52:54:00:12:34:56 is a base-60 integer, yes/on are
// booleans and 0123 is octal. Writing in 1.1 mode quotes every such string.

import { stringify } from 'yaml'

/** Serializes a value so that YAML 1.1 (PyYAML's safe_load) reads back the same value. */
export function toCloudInitYaml(value: unknown): string {
  // lineWidth 0: no folded lines, so an SSH key or a URL stays on one line as written.
  return stringify(value, { version: '1.1', lineWidth: 0 })
}
