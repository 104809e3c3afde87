// The commands Ironic 21.4's `direct` deploy interface sends the agent, as handlers of
// CommandStore (src/ironic/commands.ts), with hwimage's installer doing the writing:
//   deploy.get_deploy_steps      (sync)  the agent's in-band steps, by hardware manager
//   deploy.execute_deploy_step   (async) step write_image: image_info + configdrive
//   standby.get_partition_uuids  (sync)  what was written
//   image.install_bootloader     (async, polled) whole-disk UEFI images: nothing to install
//   standby.power_off            (async) the machine powers off; Ironic then boots it from disk
//   standby.sync                 (sync)  flush
//   clean.get_clean_steps        (sync)  none (cleaning steps are not implemented)
// Shapes from ironic/drivers/modules/agent.py (write_image), agent_base.py (refresh_steps,
// _get_completed_command, configure_local_boot) and agent_client.py.

import type { InstallReport } from '../install/install-report.js'
import type { SeedStep } from '../install/install-options.js'
import { type CommandHandler, CommandFailure } from './commands.js'
import { configDriveStep, decodeConfigDrive } from './config-drive.js'

/** The hardware manager name and version the agent reports (Ironic stores and sends the version back). */
export const HARDWARE_MANAGER = 'HwimageHardwareManager'
export const HARDWARE_MANAGER_VERSION = { hwimage: '1.0' }

/** IPA's write_image deploy step, as get_deploy_steps lists it (priority 0: Ironic's own write_image step at 80 calls it). */
export const WRITE_IMAGE_STEP = {
  interface: 'deploy',
  step: 'write_image',
  priority: 0,
  reboot_requested: false,
  argsinfo: null,
}

/** What the handlers do to the machine (the deploy environment: the real installer; tests: recorders). */
export interface DeployEffects {
  /** The disk to write (root device hints from the node's properties.root_device, when given). */
  chooseDisk(rootDeviceHints: Record<string, unknown> | undefined): Promise<string>
  install(opts: {
    source: string
    disk: string
    sha256: string
    seed?: SeedStep
    onEvent?: (name: string, fields: Record<string, unknown>) => void
  }): Promise<InstallReport>
  /** Fetches a config drive given by URL. */
  fetchText(url: string): Promise<string>
  powerOff(): Promise<void>
  sync(): Promise<void>
  log(line: string): void
}

/** The image to write, from write_image's image_info (agent.py write_image). */
export interface ImageToWrite {
  url: string
  sha256: string
  diskFormat?: string
}

/** Reads image_info; CommandFailure naming the problem when it cannot be written as given. */
export function imageToWrite(imageInfo: unknown): ImageToWrite {
  if (!imageInfo || typeof imageInfo !== 'object')
    throw new CommandFailure('InvalidCommandParamsError', 'write_image: image_info is missing')
  const info = imageInfo as Record<string, unknown>
  const url = Array.isArray(info.urls) && typeof info.urls[0] === 'string' ? info.urls[0] : undefined
  if (!url) throw new CommandFailure('InvalidCommandParamsError', 'write_image: image_info.urls names no image URL')
  const format = typeof info.disk_format === 'string' ? info.disk_format : undefined
  if (format !== undefined && format !== 'raw' && format !== 'qcow2')
    throw new CommandFailure(
      'InvalidCommandParamsError',
      `write_image: disk_format "${format}" is not supported (hwimage writes raw or qcow2 whole-disk images)`,
    )
  if (info.image_type === 'partition' || info.root_mb !== undefined)
    throw new CommandFailure(
      'InvalidCommandParamsError',
      'write_image: partition images are not supported (hwimage writes whole-disk images: drop kernel/ramdisk from instance_info)',
    )
  const algo = typeof info.os_hash_algo === 'string' ? info.os_hash_algo.toLowerCase() : undefined
  const value = typeof info.os_hash_value === 'string' ? info.os_hash_value.toLowerCase() : undefined
  const legacy = typeof info.checksum === 'string' ? info.checksum.toLowerCase() : undefined
  let sha256: string | undefined
  if (algo === 'sha256' && value) sha256 = value
  else if (!algo && legacy && /^[0-9a-f]{64}$/.test(legacy)) sha256 = legacy
  if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256))
    throw new CommandFailure(
      'ImageChecksumError',
      `write_image: no SHA-256 for ${url} (got ${algo ? `os_hash_algo ${algo}` : legacy ? `checksum of ${legacy.length} hex digits` : 'no checksum'}); the hwimage agent verifies SHA-256 only`,
      `write_image: no SHA-256 for ${url}: set instance_info image_os_hash_algo=sha256 and image_os_hash_value=<sha256 of the image file> (or image_checksum=<sha256>)`,
    )
  return { url, sha256, ...(format ? { diskFormat: format } : {}) }
}

/** The handlers, keyed by "extension.command"; `state` keeps what get_partition_uuids reports. */
export function deployHandlers(effects: DeployEffects): Record<string, CommandHandler> {
  const state: { partitionUuids: Record<string, string> } = { partitionUuids: {} }
  const sync = (run: CommandHandler['run']): CommandHandler => ({ async: false, run })
  const later = (run: CommandHandler['run']): CommandHandler => ({ async: true, run })
  return {
    'deploy.get_deploy_steps': sync(async () => ({
      deploy_steps: { [HARDWARE_MANAGER]: [WRITE_IMAGE_STEP] },
      hardware_manager_version: HARDWARE_MANAGER_VERSION,
    })),
    'clean.get_clean_steps': sync(async () => ({
      clean_steps: { [HARDWARE_MANAGER]: [] },
      hardware_manager_version: HARDWARE_MANAGER_VERSION,
    })),
    'deploy.execute_deploy_step': later(async (params) => {
      const step = params.step as { step?: unknown; interface?: unknown; args?: Record<string, unknown> } | undefined
      if (step?.interface !== 'deploy' || step.step !== 'write_image')
        throw new CommandFailure(
          'InvalidCommandParamsError',
          `execute_deploy_step: the hwimage agent runs only deploy.write_image, not ${String(step?.interface)}.${String(step?.step)}`,
        )
      const args = step.args ?? {}
      const image = imageToWrite(args.image_info)
      const node = (params.node ?? {}) as { properties?: { root_device?: Record<string, unknown> } }
      const disk = await effects.chooseDisk(node.properties?.root_device)
      const raw = args.configdrive ?? (args.image_info as Record<string, unknown>).configdrive
      let seed: SeedStep | undefined
      if (raw !== undefined && raw !== null && raw !== '') {
        const text = typeof raw === 'string' && /^https?:\/\//.test(raw) ? await effects.fetchText(raw) : raw
        if (typeof text !== 'string')
          throw new CommandFailure(
            'InvalidCommandParamsError',
            'write_image: configdrive is not a string (Ironic builds the ISO from the JSON form before the agent sees it)',
          )
        seed = configDriveStep(decodeConfigDrive(text))
      }
      effects.log(
        `write_image: ${image.url} (sha256 ${image.sha256}) onto ${disk}${seed ? ' with a config drive' : ''}`,
      )
      const report = await effects.install({
        source: image.url,
        disk,
        sha256: image.sha256,
        ...(seed ? { seed } : {}),
        onEvent: (name, fields) => effects.log(`install: ${name} ${JSON.stringify(fields)}`),
      })
      // A whole-disk image: Ironic needs no root partition UUID (agent.py prepare_instance_boot).
      state.partitionUuids = {}
      return {
        deploy_result: { disk, bytes_written: report.bytes.written, seconds: report.seconds.total },
        deploy_step: step,
      }
    }),
    'standby.get_partition_uuids': sync(async () => state.partitionUuids),
    'image.install_bootloader': later(async (params) => {
      // A whole-disk hwimage image carries shim at the removable-media path (\EFI\BOOT\BOOTX64.EFI)
      // and its own \EFI\debian entry: the firmware boots it without a new boot entry.
      effects.log(`install_bootloader: nothing to do for a whole-disk image (${JSON.stringify(params)})`)
      return 'the whole-disk image boots by the removable-media path \\EFI\\BOOT\\BOOTX64.EFI'
    }),
    'standby.sync': sync(async () => {
      await effects.sync()
      return null
    }),
    'standby.power_off': later(async () => {
      await effects.sync()
      // Answer first (the record is RUNNING), power off a moment later: Ironic polls the BMC.
      setTimeout(
        () => void effects.powerOff().catch((e) => effects.log(`power off failed: ${(e as Error).message}`)),
        500,
      )
      return null
    }),
  }
}
