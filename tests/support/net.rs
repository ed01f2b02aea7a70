//! Loopback peers: live listeners, refused ports and black holes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// A listener that accepts and holds every connection until dropped.
pub struct Live {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Live {
    pub async fn on(ip: &str) -> Live {
        Live::on_port(ip, 0).await
    }

    pub async fn on_port(ip: &str, port: u16) -> Live {
        let ip: IpAddr = ip.parse().unwrap();
        Live::serve(TcpListener::bind((ip, port)).await.unwrap())
    }

    fn serve(listener: TcpListener) -> Live {
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Live { addr, task }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port on `ip` where nothing listens: bound, read, dropped.
pub fn refused(ip: &str) -> SocketAddr {
    let ip: IpAddr = ip.parse().unwrap();
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.local_addr().unwrap()
}

/// A listener whose accept queue is full, so the kernel drops further SYNs and a connect
/// to it hangs like one to a dead host.
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<TcpStream>,
}

impl BlackHole {
    pub async fn on(ip: &str) -> BlackHole {
        BlackHole::on_port(ip, 0).await
    }

    pub async fn on_port(ip: &str, port: u16) -> BlackHole {
        let ip: IpAddr = ip.parse().unwrap();
        let addr = SocketAddr::new(ip, port);
        let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        listener.set_reuse_address(true).unwrap();
        listener.bind(&addr.into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // Fill the accept queue: connect until a connect no longer completes.
        let mut fillers = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => fillers.push(stream),
                Ok(Err(err)) => panic!("filling the black hole at {addr}: {err}"),
                Err(_) => break,
            }
            assert!(
                fillers.len() < 16,
                "the accept queue of {addr} never filled"
            );
        }
        BlackHole {
            addr,
            _listener: listener,
            _fillers: fillers,
        }
    }
}

/// Counts this process's open file descriptors.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A black-holed `[::1]:P` and a live `127.0.0.1:P` on the same port `P`.
pub async fn fallback_pair() -> (BlackHole, Live) {
    for _ in 0..20 {
        let live = Live::on("127.0.0.1").await;
        let port = live.addr.port();
        if std::net::TcpListener::bind(("::1", port)).is_ok() {
            return (BlackHole::on_port("::1", port).await, live);
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

/// Live listeners on `127.0.0.1:P` and `[::1]:P`, on the same port `P`.
pub async fn live_pair() -> (Live, Live) {
    for _ in 0..20 {
        let v4 = Live::on("127.0.0.1").await;
        let port = v4.addr.port();
        // Kept once bound, so no other test can take the port in between.
        if let Ok(v6) = TcpListener::bind(("::1", port)).await {
            return (v4, Live::serve(v6));
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1");
}

/// A live `[::1]:P` and a refused `127.0.0.1:P` (nothing listens there) on the same port `P`.
pub async fn refused_v4_live_v6() -> Live {
    for _ in 0..20 {
        let v6 = Live::on("::1").await;
        // Bound then dropped: the port is free on 127.0.0.1, so a connect there is refused.
        if std::net::TcpListener::bind(("127.0.0.1", v6.addr.port())).is_ok() {
            return v6;
        }
    }
    panic!("no port free on 127.0.0.1 while bound on ::1");
}
