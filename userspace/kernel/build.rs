//! Builds the eBPF programs of ebpf/strata-ebpf for bpfel-unknown-none (nightly, bpf-linker)
//! with aya-build and leaves them in OUT_DIR, where the loaders in src/ embed them.
fn main() -> anyhow::Result<()> {
    let ebpf = aya_build::Package {
        name: "strata-ebpf",
        root_dir: "../../ebpf/strata-ebpf",
        ..Default::default()
    };
    println!("cargo:rerun-if-changed=../../ebpf/strata-common");
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::default())
}
