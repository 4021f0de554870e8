pub mod decide;
pub mod policies;
pub mod resources;
pub mod review;
