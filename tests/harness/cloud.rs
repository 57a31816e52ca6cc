//! The EC2 fixture of the launch, instance-sync, cost and study tests: the moto emulator with
//! a DynamoDB task table, todo tasks in one step and a launch template named after it, an
//! `Env` pointing there, and an EC2 client to look at (and change) what anamo started.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{InstanceType, RequestLaunchTemplateData};
use serde_json::Value;

use super::Env;
use super::moto::Moto;

pub const TABLE: &str = "anamo-tasks";

pub const STEP: &str = "Alignment";

pub struct Cloud {
    pub moto: Moto,
    pub env: Env,
    pub rt: tokio::runtime::Runtime,
    pub ec2: Client,
}

impl Cloud {
    /// An emulator with the task table, `tasks` todo tasks in STEP and a launch template named
    /// after it; `None` outside CI without moto.
    pub fn start(tasks: usize) -> Option<Cloud> {
        let moto = Moto::start()?;
        let mut vars = moto.env();
        vars.push(("ANAMO_STORE", format!("dynamodb://{TABLE}")));
        let env = Env::new().with_vars(vars);
        env.ok(&["store", "init"]);
        if tasks > 0 {
            let rows: String = (0..tasks).map(|i| format!("t{i},S{i},true\n")).collect();
            env.write("t.csv", &format!("task_id,sample,script\n{rows}"));
            env.ok(&["tasks", "add", "t.csv", "-c", STEP]);
        }
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let config = rt.block_on(anamo::aws::config(&moto.aws()));
        let ec2 = Client::new(&config);
        rt.block_on(
            ec2.create_launch_template()
                .launch_template_name(STEP)
                .launch_template_data(
                    RequestLaunchTemplateData::builder()
                        .image_id("ami-12c6146b")
                        .instance_type(InstanceType::T3Micro)
                        .build(),
                )
                .send(),
        )
        .expect("create launch template");
        Some(Cloud { moto, env, rt, ec2 })
    }

    /// Every instance EC2 knows: (id, state, tags, type, lifecycle).
    pub fn instances(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        let out = self
            .rt
            .block_on(self.ec2.describe_instances().send())
            .expect("describe instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances().to_vec())
            .collect()
    }

    pub fn user_data(&self, id: &str) -> String {
        super::moto::user_data(&self.rt, &self.ec2, id)
    }

    pub fn terminate(&self, id: &str) {
        self.rt
            .block_on(self.ec2.terminate_instances().instance_ids(id).send())
            .expect("terminate");
    }

    pub fn query(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        serde_json::from_str(&self.env.ok(&all)).expect("json rows")
    }
}

pub fn tag<'a>(i: &'a aws_sdk_ec2::types::Instance, key: &str) -> Option<&'a str> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The launch id in "launch ID: started ..." output.
pub fn launch_id(out: &str) -> String {
    out.split_whitespace()
        .nth(1)
        .map(|s| s.trim_end_matches(':').to_string())
        .expect("launch id")
}
