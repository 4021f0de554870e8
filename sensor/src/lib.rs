//! The Sensor.
