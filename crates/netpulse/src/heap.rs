//! Giving freed heap memory back to the kernel (glibc's `malloc_trim`).
//!
//! glibc returns free memory only from the top of each heap on its own; pages freed inside it
//! (start-up's parsing and preparing of thousands of targets, a minute boundary's rows) stay
//! resident until reused. `malloc_trim(0)` gives back every whole free page, in every arena.

/// Returns the free pages of every malloc arena to the kernel (glibc only; elsewhere nothing).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes no pointers and only releases memory glibc itself holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
