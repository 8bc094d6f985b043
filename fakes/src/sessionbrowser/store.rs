//! Game sessions.

#[derive(Debug, Default)]
pub struct SessionStore {}

impl SessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&self) {}
}
