//! `npu doctor --root` on generated trees with an RK3588 BSP layout (paths as on Rockchip's
//! 5.10/6.1 kernels: the DRM node of the RKNPU driver, devfreq `fdab0000.npu` and `dmc`, 4 A55
//! cores of capacity 414 and 4 A76 of 1024): a tuned board passes, a default one lists every
//! fix. File modes cannot be committed in git, so the trees are written by the test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn put(root: &Path, p: &str, text: &str, mode: u32) {
    let f = root.join(p);
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn tree(name: &str, tuned: bool) -> PathBuf {
    let root = std::env::temp_dir().join(format!("npu-doctor-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let gov = |d: &str| if tuned { "performance".to_owned() } else { d.to_owned() };
    // card0 is the display (rockchip-drm), card1 / renderD129 the NPU.
    put(&root, "sys/class/drm/card0/device/uevent", "DRIVER=rockchip-drm\n", 0o644);
    put(&root, "sys/class/drm/card1/device/uevent", "DRIVER=RKNPU\nOF_NAME=npu\n", 0o644);
    put(&root, "sys/class/drm/renderD129/device/uevent", "DRIVER=RKNPU\n", 0o644);
    put(&root, "dev/dri/card0", "", 0o660);
    put(&root, "dev/dri/card1", "", if tuned { 0o666 } else { 0o600 });
    put(&root, "dev/dri/renderD129", "", if tuned { 0o666 } else { 0o600 });
    put(
        &root,
        "sys/kernel/debug/rknpu/version",
        if tuned { "RKNPU driver: v0.9.8\n" } else { "RKNPU driver: v0.8.2\n" },
        0o600,
    );
    for c in 0..8 {
        let cap = if c < 4 { 414 } else { 1024 };
        put(
            &root,
            &format!("sys/devices/system/cpu/cpu{c}/cpu_capacity"),
            &format!("{cap}\n"),
            0o644,
        );
        put(
            &root,
            &format!("sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor"),
            &format!("{}\n", gov("schedutil")),
            0o644,
        );
    }
    put(
        &root,
        "sys/class/devfreq/fdab0000.npu/governor",
        &format!("{}\n", gov("rknpu_ondemand")),
        0o644,
    );
    put(&root, "sys/class/devfreq/dmc/governor", &format!("{}\n", gov("dmc_ondemand")), 0o644);
    let nofile = if tuned { "65536 65536" } else { "1024 1048576" };
    put(
        &root,
        "proc/self/limits",
        &format!("Limit                     Soft Limit           Hard Limit           Units\nMax open files            {nofile}                files\n"),
        0o644,
    );
    if tuned {
        let mut lib = b"\x7fELF....".to_vec();
        lib.extend_from_slice(b"\0librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)\0");
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/librknnrt.so"), lib).unwrap();
    }
    root
}

fn doctor(root: &Path, extra: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_npu"))
        .args(["doctor", "--root"])
        .arg(root)
        .args(extra)
        .env_remove("NPU_RKNN_LIB")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}

#[test]
fn a_tuned_board_passes() {
    let root = tree("tuned", true);
    let (ok, out) = doctor(&root, &["--buffers", "2000"]);
    assert!(ok, "{out}");
    assert!(!out.contains("FIX"), "{out}");
    for want in [
        "ok    NPU device: /dev/dri/card1 (mode 666)",
        "ok    NPU device: /dev/dri/renderD129",
        "ok    NPU driver version: RKNPU driver: v0.9.8",
        "librknnrt.so version 2.3.2",
        "ok    CPU governors: performance",
        "ok    NPU governor",
        "ok    DDR (dmc) governor",
        "cpu 4,5,6,7 (capacity 1024): run as `taskset -c 4,5,6,7",
        "ok    ulimit -n: 65536 >= 2064",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    assert!(!out.contains("card0"), "the display node is not the NPU:\n{out}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_default_board_lists_every_fix() {
    let root = tree("default", false);
    let (ok, out) = doctor(&root, &["--buffers", "2000"]);
    assert!(!ok, "{out}");
    for want in [
        "FIX   NPU device: /dev/dri/card1 has mode 600",
        "sudo chmod 0666 /dev/dri/card1",
        "FIX   NPU driver version: RKNPU driver: v0.8.2",
        "FIX   librknnrt: not found",
        "NPU_RKNN_LIB",
        "FIX   CPU governors: cpu0=schedutil",
        "FIX   NPU governor: /sys/class/devfreq/fdab0000.npu/governor = rknpu_ondemand",
        "echo performance | sudo tee /sys/class/devfreq/fdab0000.npu/governor",
        "FIX   DDR (dmc) governor",
        "FIX   ulimit -n: 1024 < 2064",
        "ulimit -n 2064",
        "taskset -c 4,5,6,7",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    assert!(out.contains("8 thing(s) to fix"), "{out}");
    std::fs::remove_dir_all(root).unwrap();
}
