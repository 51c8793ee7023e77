//! The plan as text, for `--dry-run`: stages, hosts and the commands each step runs.

use std::fmt;

use super::{Action, Plan};

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps = self.steps().count();
        writeln!(
            f,
            "plan: {} cluster {} ({} stages, {steps} steps)",
            self.operation.describe(),
            self.cluster,
            self.stages.len()
        )?;
        for (index, stage) in self.stages.iter().enumerate() {
            let order = if stage.parallel {
                "hosts in parallel"
            } else {
                "one after the other"
            };
            writeln!(f, "{}. {} ({order})", index + 1, stage.name)?;
            for step in &stage.steps {
                writeln!(
                    f,
                    "   {:<15} {}",
                    step.host.to_string(),
                    step.action.summary()
                )?;
                if let Action::Script { script, .. } = &step.action {
                    for line in script.lines().filter(|line| !line.trim().is_empty()) {
                        writeln!(f, "   {:<15}   $ {line}", "")?;
                    }
                }
            }
        }
        Ok(())
    }
}
