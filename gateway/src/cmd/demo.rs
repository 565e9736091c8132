//! `consentry demo`: the ready-made sample deployment. The deployment
//! itself, its server state included, is `gateway::demo`.

use std::process::ExitCode;

use super::args::DemoArgs;

pub async fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let tls = match (a.tls, a.tls_host.is_empty()) {
        (false, true) => None,
        _ => Some(gateway::demo::DemoTls {
            extra_hosts: a
                .tls_host
                .iter()
                .map(|h| gateway::tls::pki::Host::parse(h))
                .collect::<Result<_, _>>()?,
        }),
    };
    gateway::demo::run(&a.dir, a.listen, a.fresh, a.witnesses, tls).await?;
    Ok(ExitCode::SUCCESS)
}
