//! The simulated dedicated-server fleet.

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FleetConfig {}

#[derive(Debug, Default)]
pub struct Fleet {}

impl Fleet {
    pub fn new(_config: FleetConfig) -> Self {
        Self::default()
    }

    pub fn reset(&self) {}
}
