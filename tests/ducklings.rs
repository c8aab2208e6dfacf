use crate::support::{assert_exit, Env};
use mdops::api::InstanceSize;

#[test]
fn get_set_update_round_trip() {
    let env = Env::new();
    let out = env.run(
        "ducks.rhai",
        r#"
        let c = ducklings::get("etl_pipeline");
        print(`${c.read_write.instance_size} ${c.read_write.cooldown_seconds} ${c.read_scaling.flock_size}`);
        let d = ducklings::get("bi_tool");
        print(`default: ${d.read_write.instance_size} ${d.read_scaling.instance_size} ${d.read_scaling.flock_size}`);
        let s = ducklings::set("bi_tool", #{
            read_write: #{instance_size: "mega", cooldown_seconds: 900},
            read_scaling: #{instance_size: "pulse", flock_size: 3},
        });
        print(`${s.read_write.instance_size} ${s.read_scaling.cooldown_seconds}`);
        let u = ducklings::update("etl_pipeline", #{read_write: #{instance_size: "giga"}, read_scaling: #{flock_size: 8}});
        print(`${u.read_write.instance_size} ${u.read_write.cooldown_seconds} ${u.read_scaling.flock_size} ${u.read_scaling.cooldown_seconds}`);
        let p = ducklings::update("etl_pipeline", #{read_write: #{instance_size: "pulse"}});
        print(`${p.read_write.instance_size} ${p.read_write.cooldown_seconds}`);
        "#,
        &[],
    );
    assert_exit(&out, 0);
    assert_eq!(
        out.stdout,
        "jumbo 300 2\ndefault: standard standard 4\nmega \ngiga 300 8 120\npulse \n"
    );
    let org = env.org();
    let etl = &org.users["etl_pipeline"].config;
    assert_eq!(etl.read_write.instance_size, InstanceSize::Pulse);
    assert_eq!(etl.read_write.cooldown_seconds, None);
    assert_eq!(etl.read_scaling.flock_size, Some(8));
    assert_eq!(etl.read_scaling.cooldown_seconds, Some(120));
    let bi = &org.users["bi_tool"].config;
    assert_eq!(bi.read_write.cooldown_seconds, Some(900));
    assert_eq!(bi.read_scaling.instance_size, InstanceSize::Pulse);
}

#[test]
fn update_without_change_writes_nothing() {
    let env = Env::new();
    let out = env.run("same.rhai", "ducklings::update(\"etl_pipeline\", #{read_scaling: #{flock_size: 2}}).read_scaling.flock_size", &[]);
    assert_exit(&out, 0);
    assert_eq!(out.stdout, "2\n");
    assert!(env.sim.writes().is_empty());
}
