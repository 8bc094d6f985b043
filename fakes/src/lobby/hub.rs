//! Connected lobby users and the notifications waiting for them.

#[derive(Debug, Default)]
pub struct Hub {}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&self) {}
}
