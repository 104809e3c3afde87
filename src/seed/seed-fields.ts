// Field validators of the seed file: MAC and IP addresses, CIDRs, host and interface
// names, SSH keys, crypt hashes. Each error message says what a good value looks like.

import { isIP, isIPv4, isIPv6 } from 'node:net'
import { z } from 'zod'

const MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i

/** A MAC address, normalized to lowercase. */
export const mac = z
  .string()
  .regex(MAC_RE, 'must be a MAC address such as "52:54:00:12:34:56"')
  .transform((s) => s.toLowerCase())

/** An IPv4 address. */
export const ipv4 = z.string().refine((s) => isIPv4(s), 'must be an IPv4 address such as "10.0.0.1"')
/** An IPv6 address. */
export const ipv6 = z.string().refine((s) => isIPv6(s), 'must be an IPv6 address such as "2001:db8::1"')

/** An IPv4 or IPv6 address. */
export const ipAddress = z
  .string()
  .refine((s) => isIP(s) !== 0, 'must be an IP address such as "10.0.0.53" or "2001:db8::53"')

/** Whether `s` is `address/prefix` with a prefix that fits the address family. */
export function isCidr(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s)
  if (!m) return false
  const prefix = Number(m[2])
  if (isIPv4(m[1]!)) return prefix <= 32
  if (isIPv6(m[1]!)) return prefix <= 128
  return false
}

/** An address with its prefix length: "10.0.0.5/24" or "2001:db8::5/64". */
export const cidr = z.string().refine(isCidr, 'must be an address with a prefix length such as "10.0.0.5/24"')

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i

/** One DNS label: the short host name (RFC 1123). */
export const hostname = z
  .string()
  .regex(LABEL_RE, 'must be a host name of letters, digits and inner hyphens, at most 63 characters')

/** A dotted DNS name of at most 253 characters. */
export const fqdn = z
  .string()
  .refine(
    (s) => s.length <= 253 && s.split('.').every((l) => LABEL_RE.test(l)),
    'must be a DNS name such as "metal-01.example.net"',
  )

// The instance-id names a directory under /var/lib/cloud/instances: no slashes, no dots alone.
/** An instance-id: letters, digits and `._:-`, at most 128 characters. */
export const instanceId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be letters, digits, ".", "_", ":" or "-", at most 128 characters')

// IFNAMSIZ is 16 with the final NUL; "/" and whitespace cannot appear; "." and ".." are taken.
/** A Linux network interface name. */
export const ifName = z
  .string()
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/,
    'must be an interface name of at most 15 letters, digits, "_", "." or "-"',
  )

// Debian's adduser NAME_REGEX, with useradd's 32-character limit.
/** A login name. */
export const unixName = z
  .string()
  .regex(
    /^[a-z_][a-z0-9_-]{0,31}$/,
    'must be a login name: lowercase letters, digits, "_" or "-", starting with a letter or "_"',
  )

/** A group name. */
export const unixGroup = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a group name: lowercase letters, digits, "_" or "-"')

const KEY_TYPES =
  '(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\\.com)'
// Options (from="…",no-pty …) may precede the key type, as in authorized_keys(5).
const SSH_KEY_RE = new RegExp(`^(?:\\S.*\\s)?${KEY_TYPES}\\s+[A-Za-z0-9+/]+={0,3}(?:\\s.*)?$`)

/** One authorized_keys line. */
export const sshAuthorizedKey = z
  .string()
  .refine(
    (s) => !/[\r\n]/.test(s) && SSH_KEY_RE.test(s.trim()),
    'must be one public key line such as "ssh-ed25519 AAAA… user@host"',
  )

// crypt(3) formats that Debian's libcrypt verifies: yescrypt, SHA-512, SHA-256, bcrypt, scrypt, MD5.
/** A crypt(3) password hash — never a plain password. */
export const cryptHash = z
  .string()
  .regex(
    /^\$(?:y|gy|7|6|5|2[abxy]|1)\$[./A-Za-z0-9$=,]+$/,
    'must be a crypt(3) hash such as the output of `mkpasswd -m yescrypt`, not a plain password',
  )

/** The Linux bonding modes, by the names both ifupdown and netplan accept. */
export const bondModes = [
  'balance-rr',
  'active-backup',
  'balance-xor',
  'broadcast',
  '802.3ad',
  'balance-tlb',
  'balance-alb',
] as const
