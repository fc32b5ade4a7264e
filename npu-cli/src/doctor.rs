//! `npu doctor`: checks a board for what the NPU path needs and prints the fix for each miss.
//!
//! Every path is read under `--root` (default `/`), so tests run it on copied or generated
//! sysfs/proc/dev trees. Paths are those of Rockchip's BSP kernels on RK3588:
//! - NPU device: `/dev/rknpu` (older BSPs) or the DRM node whose
//!   `/sys/class/drm/<node>/device/uevent` says `DRIVER=RKNPU` (librknnrt looks for the
//!   same two); it must be readable and writable by the user.
//! - Driver version: `/sys/kernel/debug/rknpu/version` or `/proc/debug/rknpu/version`
//!   ("RKNPU driver: v0.9.6"); 0.9.6 or newer for per-core masks (rknn-toolkit2 #138).
//! - librknnrt: `$NPU_RKNN_LIB` or `/usr/lib/librknnrt.so` (`/usr/lib64`, `/lib`); its version
//!   string ("librknnrt version: X.Y.Z") read from the file; int4 needs ≥ 1.6.0, IOMMU domains
//!   (models over ~2 GiB of weights) ≥ 2.0.
//! - Governors at `performance`: CPU `cpufreq/scaling_governor` of every core, NPU
//!   `/sys/class/devfreq/fdab0000.npu/governor`, DDR `/sys/class/devfreq/dmc/governor`
//!   (rknn-llm's `fix_freq_rk3588.sh` pins the same three).
//! - Big cores by `cpu_capacity` (A76 = 1024 on RK3588): the `taskset` list.
//! - `ulimit -n` (`/proc/self/limits`, "Max open files") against the model's NPU buffer
//!   count (`--buffers N`, or computed from `--model` packed for `--target` / `--quant`).
//!
//! Exit code 0 when nothing needs fixing, 1 otherwise.

use crate::CmdResult;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Arguments of `npu doctor`.
#[derive(clap::Args)]
pub struct Args {
    /// Read sysfs/proc/dev under this directory instead of `/` (a copied tree).
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// NPU buffers the model needs (the `NPU_BUFFERS` const of its generated code).
    #[arg(long, conflicts_with = "model")]
    buffers: Option<u64>,
    /// A GGUF to pack in memory to count its NPU buffers.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Target of --model.
    #[arg(long, default_value = "rk3588")]
    target: String,
    /// Scheme of --model.
    #[arg(long, default_value = "int8_hadamard")]
    quant: String,
}

struct Report {
    misses: usize,
}

impl Report {
    fn ok(&mut self, what: &str, detail: &str) {
        println!("ok    {what}: {detail}");
    }
    fn fix(&mut self, what: &str, detail: &str, fix: &str) {
        self.misses += 1;
        println!("FIX   {what}: {detail}");
        for line in fix.lines() {
            println!("        {line}");
        }
    }
    fn note(&mut self, what: &str, detail: &str) {
        println!("note  {what}: {detail}");
    }
}

fn read(root: &Path, p: &str) -> Option<String> {
    std::fs::read_to_string(at(root, p)).ok().map(|s| s.trim().to_owned())
}

fn at(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

fn sorted_dir(root: &Path, p: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(at(root, p))
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|s| {
        (s.trim_start_matches(|c: char| !c.is_ascii_digit()).parse::<u64>().unwrap_or(0), s.clone())
    });
    v
}

/// `npu doctor`.
pub fn run(a: Args) -> CmdResult {
    let root = a.root.as_path();
    let real = root == Path::new("/");
    let mut r = Report { misses: 0 };
    println!(
        "npu doctor: {}",
        if real { "this machine".to_owned() } else { format!("tree {}", root.display()) }
    );
    device(root, real, &mut r);
    driver(root, &mut r);
    library(root, real, &mut r);
    governors(root, &mut r);
    big_cores(root, &mut r);
    let need = match (a.buffers, &a.model) {
        (Some(n), _) => Some(n),
        (None, Some(m)) => Some(model_buffers(m, &a.target, &a.quant)?),
        _ => None,
    };
    files(root, need, &mut r);
    if r.misses == 0 {
        println!("npu doctor: everything the NPU path needs is in place");
        Ok(())
    } else {
        Err(format!("doctor: {} thing(s) to fix (see FIX lines above)", r.misses).into())
    }
}

fn device(root: &Path, real: bool, r: &mut Report) {
    let mut nodes: Vec<String> = Vec::new();
    if at(root, "/dev/rknpu").exists() {
        nodes.push("/dev/rknpu".into());
    }
    for n in sorted_dir(root, "/sys/class/drm") {
        if !(n.starts_with("card") || n.starts_with("renderD")) || n.contains('-') {
            continue;
        }
        let ue = read(root, &format!("/sys/class/drm/{n}/device/uevent")).unwrap_or_default();
        if ue.lines().any(|l| l.eq_ignore_ascii_case("DRIVER=RKNPU"))
            && at(root, &format!("/dev/dri/{n}")).exists()
        {
            nodes.push(format!("/dev/dri/{n}"));
        }
    }
    if nodes.is_empty() {
        r.fix(
            "NPU device",
            "no /dev/rknpu and no DRM node driven by RKNPU",
            "boot a Rockchip BSP kernel with the rknpu driver (the mainline `rocket` driver does not serve librknnrt);\ncheck `dmesg | grep -i rknpu` and that the NPU node is enabled in the device tree",
        );
        return;
    }
    for n in nodes {
        let Ok(md) = std::fs::metadata(at(root, &n)) else { continue };
        let mode = md.mode() & 0o777;
        let (euid, groups) = ids();
        let usable = (real && euid == 0)
            || mode & 0o006 == 0o006
            || (mode & 0o060 == 0o060 && groups.contains(&md.gid()));
        if usable {
            r.ok("NPU device", &format!("{n} (mode {mode:o}) is usable"));
        } else {
            r.fix(
                "NPU device",
                &format!("{n} has mode {mode:o}, group {}: not readable and writable by this user", md.gid()),
                &format!(
                    "sudo chmod 0666 {n}   (for this boot), or permanently a udev rule in /etc/udev/rules.d/99-rknpu.rules:\n  KERNEL==\"{}\", MODE=\"0666\"\nor add the user to the node's group: sudo usermod -aG render $USER",
                    n.rsplit('/').next().unwrap_or("rknpu")
                ),
            );
        }
    }
}

fn ids() -> (u32, Vec<u32>) {
    // SAFETY: plain libc queries with a correctly sized buffer.
    unsafe {
        let euid = libc::geteuid();
        let mut g = vec![0 as libc::gid_t; 256];
        let n = libc::getgroups(g.len() as i32, g.as_mut_ptr());
        g.truncate(n.max(0) as usize);
        g.push(libc::getegid());
        (euid, g)
    }
}

/// "v0.9.6" / "0.9.8" → (0, 9, 6).
fn version(s: &str) -> Option<(u32, u32, u32)> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let mut it = s[start..].split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

fn driver(root: &Path, r: &mut Report) {
    let v = ["/sys/kernel/debug/rknpu/version", "/proc/debug/rknpu/version"]
        .iter()
        .find_map(|p| read(root, p).map(|s| (p.to_string(), s)));
    match v {
        None => r.note(
            "NPU driver version",
            "unreadable (/sys/kernel/debug/rknpu/version needs root and debugfs): run `sudo cat /sys/kernel/debug/rknpu/version`; 0.9.6 or newer is needed",
        ),
        Some((p, s)) => match version(&s) {
            Some(v) if v >= (0, 9, 6) => r.ok("NPU driver version", &format!("{s} ({p})")),
            _ => r.fix(
                "NPU driver version",
                &format!("{s} ({p}): older than 0.9.6, per-core masks fail"),
                "update the board's BSP kernel (Rockchip rknpu driver 0.9.6 or newer)",
            ),
        },
    }
}

fn library(root: &Path, real: bool, r: &mut Report) {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("NPU_RKNN_LIB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        candidates.push(if real { p } else { at(root, &p.to_string_lossy()) });
    }
    for p in [
        "/usr/lib/librknnrt.so",
        "/usr/lib64/librknnrt.so",
        "/usr/lib/aarch64-linux-gnu/librknnrt.so",
        "/lib/librknnrt.so",
    ] {
        candidates.push(at(root, p));
    }
    let Some(lib) = candidates.iter().find(|p| p.exists()) else {
        r.fix(
            "librknnrt",
            "not found (NPU_RKNN_LIB unset or missing; none in /usr/lib, /usr/lib64, /lib)",
            "install Rockchip's runtime: copy rknpu2/runtime/Linux/librknn_api/aarch64/librknnrt.so of rknn-toolkit2 (>= 2.0) to /usr/lib,\nor set NPU_RKNN_LIB=/path/to/librknnrt.so",
        );
        return;
    };
    let bytes = std::fs::read(lib).unwrap_or_default();
    let marker = b"librknnrt version: ";
    let ver = bytes.windows(marker.len()).position(|w| w == marker).map(|i| {
        let tail = &bytes[i + marker.len()..(i + marker.len() + 40).min(bytes.len())];
        let end = tail.iter().position(|&b| b == 0 || b == b'\n').unwrap_or(tail.len());
        String::from_utf8_lossy(&tail[..end]).into_owned()
    });
    match ver.as_deref().and_then(|s| version(s).map(|v| (s, v))) {
        Some((s, v)) if v >= (2, 0, 0) => r.ok("librknnrt", &format!("{} version {s}", lib.display())),
        Some((s, v)) => r.fix(
            "librknnrt",
            &format!(
                "{} version {s}: {}",
                lib.display(),
                if v < (1, 6, 0) { "no int4 matmul, no IOMMU domains" } else { "no IOMMU domains (models over ~2 GiB of weights fail)" }
            ),
            "install librknnrt 2.x (rknn-toolkit2 >= 2.0: rknpu2/runtime/Linux/librknn_api/aarch64/librknnrt.so) to /usr/lib",
        ),
        None => r.note("librknnrt", &format!("{} has no version string (a stand-in?)", lib.display())),
    }
}

fn governors(root: &Path, r: &mut Report) {
    let cpus: Vec<String> = sorted_dir(root, "/sys/devices/system/cpu")
        .into_iter()
        .filter(|n| {
            n.starts_with("cpu") && n[3..].chars().all(|c| c.is_ascii_digit()) && n.len() > 3
        })
        .collect();
    let govs: Vec<(String, String)> = cpus
        .iter()
        .filter_map(|c| {
            let g = read(root, &format!("/sys/devices/system/cpu/{c}/cpufreq/scaling_governor"))?;
            Some((c.clone(), g))
        })
        .collect();
    let slow: Vec<String> =
        govs.iter().filter(|(_, g)| g != "performance").map(|(c, g)| format!("{c}={g}")).collect();
    if govs.is_empty() {
        r.note("CPU governors", "no cpufreq/scaling_governor in sysfs");
    } else if slow.is_empty() {
        r.ok("CPU governors", "performance");
    } else {
        r.fix(
            "CPU governors",
            &slow.join(" "),
            "for g in /sys/devices/system/cpu/cpufreq/policy*/scaling_governor; do echo performance | sudo tee $g; done",
        );
    }
    for (what, p) in [
        ("NPU governor", "/sys/class/devfreq/fdab0000.npu/governor"),
        ("DDR (dmc) governor", "/sys/class/devfreq/dmc/governor"),
    ] {
        match read(root, p) {
            Some(g) if g == "performance" => r.ok(what, &format!("{p} = performance")),
            Some(g) => {
                r.fix(what, &format!("{p} = {g}"), &format!("echo performance | sudo tee {p}"))
            }
            None => r.note(what, &format!("{p} not found")),
        }
    }
}

fn big_cores(root: &Path, r: &mut Report) {
    let caps: Vec<(u32, u32)> = sorted_dir(root, "/sys/devices/system/cpu")
        .into_iter()
        .filter_map(|n| {
            let id = n.strip_prefix("cpu")?.parse::<u32>().ok()?;
            let c =
                read(root, &format!("/sys/devices/system/cpu/{n}/cpu_capacity"))?.parse().ok()?;
            Some((id, c))
        })
        .collect();
    let Some(max) = caps.iter().map(|c| c.1).max() else {
        r.note("big cores", "no cpu_capacity in sysfs");
        return;
    };
    let big: Vec<String> = caps.iter().filter(|c| c.1 == max).map(|c| c.0.to_string()).collect();
    r.ok(
        "big cores",
        &format!(
            "cpu {} (capacity {max}): run as `taskset -c {} npu run ...`",
            big.join(","),
            big.join(",")
        ),
    );
}

fn files(root: &Path, need: Option<u64>, r: &mut Report) {
    let limits = read(root, "/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| if v == "unlimited" { Some(u64::MAX) } else { v.parse().ok() });
    match (soft, need) {
        (None, _) => r.note("ulimit -n", "/proc/self/limits unreadable"),
        (Some(s), None) => r.note(
            "ulimit -n",
            &format!("{s}; give --buffers N (the model's NPU_BUFFERS) or --model to compare"),
        ),
        (Some(s), Some(n)) => {
            // One dma-buf per buffer plus the process' own files (the backend's margin).
            let want = n + 64;
            if s >= want {
                r.ok("ulimit -n", &format!("{s} >= {want} ({n} NPU buffers + 64)"));
            } else {
                r.fix(
                    "ulimit -n",
                    &format!("{s} < {want} ({n} NPU buffers + 64)"),
                    &format!("ulimit -n {want}   (or `* soft nofile {want}` in /etc/security/limits.conf)"),
                );
            }
        }
    }
}

fn model_buffers(
    path: &Path,
    target: &str,
    quant: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    use npu_build::pack::{pack, PackOptions};
    let t = npu_build::quant::parse_target(target)?;
    let s = npu_build::quant::parse_scheme(quant)?;
    let g = npu_build::gguf::Gguf::open(path)?;
    let threads = crate::threads(None);
    let p = pack(&g, &PackOptions { target: t, scheme: s, threads })?;
    let descs = p.descs();
    // The memory plan: bytes per (domain, core); A buffers are shared by the cores.
    let mut bytes = std::collections::BTreeMap::<(u32, u32), u64>::new();
    let tot = npu_runtime::rknpu::plan::totals(&descs, t.max_buffer, |d, c, b| {
        *bytes.entry((d, c)).or_default() += b;
    })?;
    println!(
        "npu doctor: {} packed for {} / {}: {} NPU buffers ({} B, {} A, {} C), {} contexts, {} domain(s); B {} bytes, A+C {} bytes",
        path.display(),
        t.name,
        s.name(),
        tot.buffers(),
        tot.b_buffers,
        tot.a_buffers,
        tot.c_buffers,
        tot.contexts,
        tot.domains,
        tot.b_bytes,
        tot.ac_bytes
    );
    for ((d, c), b) in &bytes {
        let who = if *c == u32::MAX { "A (shared)".to_owned() } else { format!("core {c}") };
        println!("npu doctor:   domain {d} {who}: {b} bytes");
    }
    Ok(tot.buffers())
}
