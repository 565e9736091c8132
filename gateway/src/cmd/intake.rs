//! `consentry intake`: an agency co-signs a person's enrolment at its
//! intake.

use std::process::ExitCode;

use super::args::IntakeArgs;
use super::common::identity;

pub async fn run(a: IntakeArgs) -> anyhow::Result<ExitCode> {
    let client = identity(a.who, a.agency.as_deref())?.client()?;
    let (participant, reply) = client.confirm_intake(&a.code).await?;
    if reply.status == 201 {
        println!("Enrolled {participant}: they can sign in now.");
        Ok(ExitCode::SUCCESS)
    } else {
        print!("{}", gateway::client::describe(&reply));
        Ok(ExitCode::FAILURE)
    }
}
