// Linux constants used by baton (x86_64 / aarch64 values; identical on both).

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const IPPROTO_TCP = 6;
/** Raw IP socket whose sender writes the whole IP header (IP_HDRINCL implied). */
export const IPPROTO_RAW = 255;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const SO_RCVBUFFORCE = 33;
export const SO_SNDBUFFORCE = 32;
export const SO_KEEPALIVE = 9;

export const SOL_IP = 0;
export const IP_FREEBIND = 15;
export const SOL_IPV6 = 41;
export const IPV6_V6ONLY = 26;

export const TCP_NODELAY = 1;
export const TCP_MAXSEG = 2;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const TCP_DEFER_ACCEPT = 9;
export const TCP_INFO = 11;
export const TCP_USER_TIMEOUT = 18;
export const TCP_REPAIR = 19;
export const TCP_REPAIR_QUEUE = 20;
export const TCP_QUEUE_SEQ = 21;
export const TCP_REPAIR_OPTIONS = 22;
export const TCP_TIMESTAMP = 24;
export const TCP_REPAIR_WINDOW = 29;

export const TCP_REPAIR_ON = 1;
export const TCP_REPAIR_OFF = 0;
export const TCP_REPAIR_OFF_NO_WP = -1;
export const TCP_RECV_QUEUE = 1;
export const TCP_SEND_QUEUE = 2;

/** tcp_repair_opt codes (TCPOPT_*). */
export const TCPOPT_MSS = 2;
export const TCPOPT_WINDOW = 3;
export const TCPOPT_SACK_PERM = 4;
export const TCPOPT_TIMESTAMP = 8;

/** tcp_info.tcpi_options bits. */
export const TCPI_OPT_TIMESTAMPS = 1;
export const TCPI_OPT_SACK = 2;
export const TCPI_OPT_WSCALE = 4;

export const MSG_PEEK = 0x2;
export const MSG_DONTWAIT = 0x40;
/** recv with MSG_DONTWAIT found nothing queued (EWOULDBLOCK is the same number on Linux). */
export const EAGAIN = 11;
/** A system call interrupted by a signal: try it again. */
export const EINTR = 4;
/** A netlink socket's receive buffer overflowed (messages were lost); also out of buffer space. */
export const ENOBUFS = 105;

export const SIOCINQ = 0x541b;
export const SIOCOUTQ = 0x5411;
export const SIOCOUTQNSD = 0x894b;

/** TCP states (tcp_info.tcpi_state). */
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_SENT = 2;
export const TCP_SYN_RECV = 3;
export const TCP_FIN_WAIT1 = 4;
export const TCP_FIN_WAIT2 = 5;
export const TCP_TIME_WAIT = 6;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;
export const TCP_LAST_ACK = 9;
export const TCP_LISTEN = 10;
export const TCP_CLOSING = 11;
