use valkit::*;
fn main() -> Result<()> {
    for port in [17001u16, 17002] {
        for proto in [Protocol::Resp3, Protocol::Resp2] {
            let mut cfg = ConnectionConfig::new("127.0.0.1", port);
            cfg.protocol = proto;
            cfg.db = 2;
            cfg.client_name = Some("scratch".into());
            let c = Connection::open(&cfg)?;
            println!("{:?} {:?}", c, c.exec(&cmd("PING"))?);
            c.exec(&cmd("SET").arg("k").arg("v\r\n"))?;
            println!("{:?}", c.exec(&cmd("GET").arg("k"))?);
            println!("{:?}", c.exec(&cmd("HELLO")).map(|v| v.type_name()));
            let r = pipe()
                .cmd(cmd("SET").arg("a").arg(1))
                .cmd(cmd("INCR").arg("a"))
                .cmd(cmd("LPUSH").arg("a").arg("x"))
                .run(&c)?;
            println!("{:?}", r);
            let t = c.transaction(&["a"], |tx| {
                let v = tx.exec(&cmd("GET").arg("a"))?;
                println!("in tx {v:?}");
                Ok(pipe().cmd(cmd("INCR").arg("a")))
            })?;
            println!("{t:?}");
            let e = c.exec(
                &cmd("BLPOP")
                    .arg("nokey")
                    .arg(0.2)
                    .blocking(Blocking::For(std::time::Duration::from_millis(200))),
            );
            println!("blpop {e:?}");
        }
    }
    let mut cfg = ConnectionConfig::new("127.0.0.1", 17001);
    cfg.read_timeout = Some(std::time::Duration::from_millis(300));
    let c = Connection::open(&cfg)?;
    let t = std::time::Instant::now();
    println!(
        "sleep: {:?} after {:?}",
        c.exec(&cmd("DEBUG").arg("SLEEP").arg(1)),
        t.elapsed()
    );
    println!("after: {:?} broken={}", c.exec(&cmd("PING")), c.is_broken());
    cfg.password = Some("hunter2".into());
    println!("auth: {:?}", Connection::open(&cfg).map(|_| ()));
    Ok(())
}
