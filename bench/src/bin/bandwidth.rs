//! Memory read bandwidth of this machine (see `npu_bench::bandwidth`), as one JSON object.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut threads, mut mib, mut reps) = (1usize, 1024usize, 5usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--threads" => &mut threads,
            "--mib" => &mut mib,
            "--reps" => &mut reps,
            _ => {
                eprintln!("bandwidth: unknown argument `{a}` (--threads N --mib N --reps N)");
                return ExitCode::from(1);
            }
        };
        match it.next().and_then(|v| v.parse().ok()) {
            Some(v) => *slot = v,
            None => {
                eprintln!("bandwidth: {a} needs a number");
                return ExitCode::from(1);
            }
        }
    }
    let bps = npu_bench::bandwidth(threads, mib, reps);
    let list = bps.iter().map(|b| format!("{b:.0}")).collect::<Vec<_>>().join(",");
    println!(
        "{{\"mode\":\"bandwidth\",\"threads\":{threads},\"mib\":{mib},\"bytes_per_s\":[{list}]}}"
    );
    ExitCode::SUCCESS
}
