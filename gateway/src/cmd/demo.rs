//! `consentry demo`: the ready-made sample deployment. The deployment
//! itself, its server state included, is `gateway::demo`.

use std::process::ExitCode;

use super::args::DemoArgs;

pub async fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    gateway::demo::run(&a.dir, a.listen, a.fresh, a.witnesses).await?;
    Ok(ExitCode::SUCCESS)
}
