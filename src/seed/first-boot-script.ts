// The first-boot script hwimage puts in vendor-data when the seed asks for a report
// or for cleanup. cloud-init 22.4 runs it with the `scripts-vendor` module of the
// final stage; it hands over at once to a transient systemd unit ordered after
// cloud-final.service (`systemd-run --no-block -p After=cloud-final.service`), so it
// runs when /run/cloud-init/result.json exists: a script run *by* the final stage
// would report before the stage's own result is known.
//
// Why not cloud-init's own report-back mechanisms:
// - `phone_home` (cc_phone_home, 22.4) POSTs form data with only host keys,
//   instance_id, hostname and fqdn; no addresses and no result, and it runs inside
//   the final stage, before result.json is written.
// - webhook `reporting` posts one event per stage step (dozens), is read from system
//   config rather than vendor-data, and carries no addresses.
// Python 3 is there on every image with cloud-init (cloud-init is Python), so the
// script needs nothing beyond the standard library; `ip`, `blkid`, `sfdisk`/`sgdisk`
// and `partx` come with cloud-init's dependencies (iproute2, util-linux, fdisk, gdisk).

import type { SeedFormat } from './seed-schema.js'

/** What the first-boot script is told; it is embedded in the script (it may hold a token). */
export interface FirstBootConfig {
  contract: string
  format: SeedFormat
  /** Filesystem label of the seed volume, checked before cleanup. */
  label: string
  /** GPT partition name of the seed partition, checked before cleanup. */
  partitionName: string
  cleanup: boolean
  report?: { url: string; token?: string }
}

/** The file name of the script in vendor-data (and under /var/lib/cloud/instance/scripts/vendor/). */
export const FIRST_BOOT_SCRIPT_NAME = 'hwimage-first-boot'
/** The transient systemd unit the script runs in after cloud-final.service. */
export const FIRST_BOOT_UNIT = 'hwimage-first-boot.service'

/** The Python 3 script, with its config embedded as a JSON string literal. */
export function firstBootScript(config: FirstBootConfig): string {
  // A JSON string literal is also a valid Python string literal.
  const literal = JSON.stringify(JSON.stringify(config))
  return SCRIPT.replace('@CONFIG@', () => literal)
}

const SCRIPT = String.raw`#!/usr/bin/python3
# hwimage first boot (docs/first-boot-contract.md). Run by cloud-init's scripts-vendor
# module; hands over to a transient unit ordered after cloud-final.service, then:
# removes the seed partition if asked (cleanup), and POSTs a JSON report.
# Logs: journalctl -u hwimage-first-boot; the report is kept in /var/log/hwimage-first-boot.json.
import datetime, json, os, re, shutil, socket, subprocess, sys, time, urllib.error, urllib.request

CONFIG = json.loads(@CONFIG@)
ROOT = os.environ.get("HWIMAGE_TEST_ROOT", "")  # tests run the script against a fake root
UNIT = "hwimage-first-boot"
RESULT = "/run/cloud-init/result.json"


def path(p):
    return ROOT + p


def log(msg):
    print("hwimage-first-boot: " + msg, flush=True)


def read_json(p):
    try:
        with open(path(p)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run(argv, timeout=60):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return -1, "", str(e)


def hand_over():
    argv = ["systemd-run", "--no-block", "--unit=" + UNIT,
            "--description=hwimage first-boot report and seed cleanup",
            "--property=After=cloud-final.service",
            sys.executable, os.path.abspath(__file__), "--after-final"]
    rc, _, err = run(argv)
    if rc == 0:
        log("started %s.service, ordered after cloud-final.service" % UNIT)
        return
    log("systemd-run failed (%s); waiting for cloud-init in the background instead" % err)
    # cloud-final.service has KillMode=process: a detached child outlives the stage.
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            fd = os.open(path("/var/log/hwimage-first-boot.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            try:
                after_final()
            finally:
                os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)


def wait_for_result(timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path(RESULT)):
        if time.monotonic() > deadline:
            log("%s did not appear within %d s" % (RESULT, timeout))
            return False
        time.sleep(2)
    return True


def instance_data():
    return (read_json("/run/cloud-init/instance-data.json") or {}).get("v1") or {}


def instance_id():
    iid = instance_data().get("instance_id")
    if iid:
        return iid
    try:
        with open(path("/var/lib/cloud/data/instance-id")) as f:
            return f.read().strip()
    except OSError:
        return None


def addresses():
    rc, out, err = run(["ip", "-j", "address", "show"])
    if rc != 0:
        log("cannot list addresses: " + err)
        return []
    found = []
    for link in json.loads(out or "[]"):
        if link.get("ifname") == "lo" or "LOOPBACK" in link.get("flags", []):
            continue
        for a in link.get("addr_info", []):
            if a.get("scope") == "host":
                continue
            found.append({"ifname": link.get("ifname"), "mac": link.get("address"), "family": a.get("family"),
                          "address": a.get("local"), "prefixlen": a.get("prefixlen"), "scope": a.get("scope")})
    return found


def cloud_init_result(have_result):
    v1 = (read_json(RESULT) or {}).get("v1") or {}
    stages = {}
    for name, st in ((read_json("/run/cloud-init/status.json") or {}).get("v1") or {}).items():
        if isinstance(st, dict) and "errors" in st:
            stages[name] = {"errors": st.get("errors") or [], "start": st.get("start"), "finished": st.get("finished")}
    errors = list(v1.get("errors") or [])
    status = "unknown" if not have_result else ("error" if errors else "done")
    return {"status": status, "datasource": v1.get("datasource"), "errors": errors, "stages": stages}


def blkid(dev):
    rc, out, _ = run(["blkid", "-p", "-o", "export", dev])
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l) if rc == 0 else {}


def keep_seed_locally(iid, hostname):
    # Once the seed partition is gone, ds-identify would find no datasource and disable
    # cloud-init on later boots. A local seed with the same instance-id (and nothing
    # secret) keeps cloud-init running as the same instance.
    if CONFIG["format"] == "configdrive":
        d = path("/var/lib/cloud/seed/config_drive/openstack/latest")
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(d + "/meta_data.json", "w") as f:
            json.dump({"uuid": iid, "hostname": hostname}, f)
    else:
        d = path("/var/lib/cloud/seed/nocloud")
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(d + "/meta-data", "w") as f:
            f.write("instance-id: %s\nlocal-hostname: %s\n" % (json.dumps(iid), json.dumps(hostname)))
        with open(d + "/user-data", "w") as f:
            f.write("")
    return d


def partition_name(sysdir, dev):
    # The kernel puts the GPT partition name in the partition's uevent (PARTNAME=).
    try:
        with open(sysdir + "/uevent") as f:
            for line in f:
                if line.startswith("PARTNAME="):
                    return line.strip().split("=", 1)[1]
    except OSError:
        pass
    return blkid(dev).get("PART_ENTRY_NAME")


def entry_exists(disk, number):
    rc, out, _ = run(["sfdisk", "--json", disk])
    if rc != 0:
        return None
    nodes = [p.get("node", "") for p in json.loads(out).get("partitiontable", {}).get("partitions", [])]
    return any(re.search(r"\D%d$" % number, n) for n in nodes)


def cleanup(iid):
    sub = instance_data().get("subplatform") or ""
    m = re.search(r"(/dev/[^),\s]+)", sub)
    if not m:
        return {"done": False, "reason": "cloud-init did not read the seed from a device (%s)" % sub}
    dev = os.path.realpath(path(m.group(1)))
    name = os.path.basename(dev)
    sysdir = path("/sys/class/block/" + name)
    if not os.path.exists(sysdir + "/partition"):
        return {"done": False, "device": m.group(1), "reason": "the seed is a whole device, not a partition: detach it instead"}
    label = blkid(dev).get("LABEL")
    partname = partition_name(sysdir, dev)
    if partname != CONFIG["partitionName"] or label != CONFIG["label"]:
        return {"done": False, "device": m.group(1), "reason": "partition name %r and filesystem label %r are not the seed's" % (partname, label)}
    with open(sysdir + "/partition") as f:
        number = int(f.read())
    with open(sysdir + "/size") as f:
        size = int(f.read()) * 512
    disk = path("/dev/" + os.path.basename(os.path.realpath(sysdir + "/..")))
    seed_copy = keep_seed_locally(iid, instance_data().get("local_hostname") or socket.gethostname())
    # Zero every byte first: the partition held password hashes and tokens.
    zero = bytes(1 << 20)
    with open(dev, "r+b", buffering=0) as f:
        left = size
        while left > 0:
            left -= f.write(zero[:min(left, len(zero))])
        os.fsync(f.fileno())
    # Delete the GPT entry: sfdisk (fdisk) or sgdisk (gdisk), both cloud-init dependencies.
    deleted = None
    for argv in (["sfdisk", "--delete", disk, str(number)], ["sgdisk", "--delete=%d" % number, disk]):
        if shutil.which(argv[0]):
            rc, _, err = run(argv)
            log("%s: exit %d %s" % (" ".join(argv), rc, err))
            # sfdisk may fail only at re-reading the busy disk, after writing the table.
            if rc == 0 or entry_exists(disk, number) is False:
                deleted = argv[0]
                break
    # The root filesystem keeps the disk busy, so the kernel is told about this one partition.
    run(["partx", "--delete", "--nr", str(number), disk])
    run(["udevadm", "settle"])
    return {"done": deleted is not None, "device": m.group(1), "disk": disk, "partition": number, "zeroed_bytes": size,
            "deleted_with": deleted, "local_seed": seed_copy}


def request_key():
    # One key for every attempt of this boot's report: a retry after an answer was lost is
    # recorded once by a server that deduplicates (hwimage serve does, per machine and key).
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return "first-boot:" + f.read().strip()
    except OSError:
        return "first-boot:" + os.urandom(16).hex()


def post(url, payload, token):
    body = json.dumps(payload).encode()
    key = request_key()
    for attempt in range(1, 31):
        req = urllib.request.Request(url, data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("User-Agent", "hwimage-first-boot/1")
        req.add_header("Idempotency-Key", '"%s"' % key)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                log("reported to %s: HTTP %d" % (url, r.status))
                return True
        except urllib.error.HTTPError as e:
            log("report to %s: HTTP %d" % (url, e.code))
            if 400 <= e.code < 500 and e.code not in (408, 429):
                return False
        except (OSError, ValueError) as e:
            log("report to %s failed (attempt %d): %s" % (url, attempt, e))
        time.sleep(min(60, 2 * attempt))
    return False


def after_final():
    have_result = wait_for_result(int(os.environ.get("HWIMAGE_FIRST_BOOT_WAIT", "1800")))
    iid = instance_id()
    cleaned = None
    if CONFIG["cleanup"]:
        try:
            cleaned = cleanup(iid)
        except Exception as e:  # the report must still go out
            cleaned = {"done": False, "reason": "%s: %s" % (type(e).__name__, e)}
        log("cleanup: " + json.dumps(cleaned))
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    payload = {
        "contract": CONFIG["contract"],
        "event": "first-boot",
        "instance_id": iid,
        "hostname": socket.gethostname(),
        "fqdn": socket.getfqdn(),
        "addresses": addresses(),
        "cloud_init": cloud_init_result(have_result),
        "seed": {"format": CONFIG["format"], "cleanup": cleaned},
        "uptime_seconds": uptime,
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        fd = os.open(path("/var/log/hwimage-first-boot.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
    except OSError as e:
        log("cannot keep the report: %s" % e)
    report = CONFIG.get("report")
    if report:
        return 0 if post(report["url"], payload, report.get("token")) else 1
    return 0


if __name__ == "__main__":
    if "--after-final" in sys.argv[1:]:
        sys.exit(after_final())
    hand_over()
`
