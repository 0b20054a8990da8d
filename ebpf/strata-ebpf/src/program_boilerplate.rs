//! What every strata eBPF program needs besides its code: a panic handler (never reached: the
//! verifier rejects code that could panic) and the GPL license the helpers require. Included by
//! each program with `#[path]`.

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
