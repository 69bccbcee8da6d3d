//! The FTD side: AnyConnect-compatible headend, data plane, session database and management channel (coming in the sensor-agent issues).
