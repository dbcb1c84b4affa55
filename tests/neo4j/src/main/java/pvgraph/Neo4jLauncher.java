package pvgraph;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.cli.ExecutionContext;
import org.neo4j.commandline.admin.security.SetInitialPasswordCommand;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;
import picocli.CommandLine;

/**
 * Runs an embedded Neo4j 5.26 (Community) DBMS in this JVM with the Bolt
 * connector enabled, for pvgraph development and integration tests.
 *
 * <p>Environment:
 * <ul>
 *   <li>NEO4J_PORT      Bolt port on 127.0.0.1 (default 7687)</li>
 *   <li>NEO4J_HTTP_PORT HTTP port on 127.0.0.1 (default 7474); "0" or "off" disables HTTP</li>
 *   <li>NEO4J_PASSWORD  password of user "neo4j" (default pvgraph-dev-password, min. 8 chars)</li>
 *   <li>NEO4J_DATA_DIR  Neo4j home directory holding data/ and logs/ (default: a new temp dir,
 *                       deleted again on shutdown). Reusing the same directory keeps the data
 *                       across restarts.</li>
 *   <li>NEO4J_PAGECACHE page cache size (default 256m)</li>
 * </ul>
 *
 * <p>Prints {@code READY bolt://127.0.0.1:PORT} once Bolt accepts connections
 * and authentication is configured. SIGTERM/SIGINT shut the DBMS down cleanly.
 */
public final class Neo4jLauncher {
    private static final String USER = "neo4j";

    public static void main(String[] args) throws Exception {
        int boltPort = intEnv("NEO4J_PORT", 7687);
        String httpPortRaw = env("NEO4J_HTTP_PORT", "7474").trim();
        boolean httpEnabled = !(httpPortRaw.isEmpty() || httpPortRaw.equals("0") || httpPortRaw.equalsIgnoreCase("off"));
        int httpPort = httpEnabled ? Integer.parseInt(httpPortRaw) : 0;
        String password = env("NEO4J_PASSWORD", "pvgraph-dev-password");
        if (password.length() < 8) {
            // Neo4j's default dbms.security.auth_minimum_password_length.
            System.err.println("[neo4j-launcher] NEO4J_PASSWORD must be at least 8 characters");
            System.exit(2);
        }
        String pageCache = env("NEO4J_PAGECACHE", "256m");
        String dataDirRaw = System.getenv("NEO4J_DATA_DIR");
        boolean tempHome = dataDirRaw == null || dataDirRaw.isBlank();
        Path home = (tempHome ? Files.createTempDirectory("pvgraph-neo4j-") : Path.of(dataDirRaw))
                .toAbsolutePath().normalize();
        Files.createDirectories(home);

        // Layout under NEO4J_DATA_DIR (acts as neo4j_home): data/ (stores, tx logs, dbms/) and logs/.
        Path systemStore = home.resolve("data").resolve("databases").resolve("system");
        boolean freshDbms = !Files.isDirectory(systemStore);
        log("Neo4j home: " + home + (freshDbms ? " (new)" : " (existing data)"));

        if (freshDbms) {
            // Same mechanism as `neo4j-admin dbms set-initial-password`: writes data/dbms/auth.ini,
            // which the system database consumes when it is first created. This means the default
            // neo4j/neo4j credentials are never accepted over Bolt, not even briefly.
            setInitialPassword(home, password);
        }
        Path pwMarker = home.resolve("data").resolve("dbms").resolve("pvgraph-password.sha256");

        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.parse(pageCache))
                .setConfig(GraphDatabaseSettings.default_listen_address, new SocketAddress("127.0.0.1"))
                .setConfig(GraphDatabaseSettings.default_advertised_address, new SocketAddress("127.0.0.1"))
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", boltPort))
                .setConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", boltPort))
                .setConfig(HttpsConnector.enabled, false)
                .setConfig(HttpConnector.enabled, httpEnabled);
        if (httpEnabled) {
            builder.setConfig(HttpConnector.listen_address, new SocketAddress("127.0.0.1", httpPort))
                    .setConfig(HttpConnector.advertised_address, new SocketAddress("127.0.0.1", httpPort));
        }

        long t0 = System.nanoTime();
        DatabaseManagementService dbms = builder.build();
        CountDownLatch stopped = new CountDownLatch(1);
        Path finalHome = home;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("shutting down");
            try {
                dbms.shutdown();
                if (tempHome) {
                    deleteRecursively(finalHome);
                    log("deleted temporary home " + finalHome);
                }
                log("STOPPED");
            } catch (Throwable t) {
                log("shutdown failed: " + t);
            } finally {
                stopped.countDown();
            }
        }, "neo4j-shutdown"));

        try {
            GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
            if (!db.isAvailable(Duration.ofMinutes(2).toMillis())) {
                throw new IllegalStateException("default database did not become available");
            }
            log(String.format("DBMS up after %.1f s", (System.nanoTime() - t0) / 1e9));
            if (freshDbms) {
                writePasswordMarker(pwMarker, password);
            } else if (passwordMarkerMatches(pwMarker, password)) {
                log("password for user '" + USER + "' unchanged");
            } else {
                // First Cypher query of the JVM: takes several seconds, hence the marker file.
                long t1 = System.nanoTime();
                syncPassword(dbms, password);
                writePasswordMarker(pwMarker, password);
                log(String.format("password sync took %.1f s", (System.nanoTime() - t1) / 1e9));
            }
            waitForPort(boltPort, Duration.ofSeconds(60));
        } catch (Throwable t) {
            log("startup failed: " + t);
            t.printStackTrace();
            System.exit(1);
        }

        log(String.format("started in %.1f s (bolt 127.0.0.1:%d, http %s, auth enabled, user %s)",
                (System.nanoTime() - t0) / 1e9, boltPort, httpEnabled ? "127.0.0.1:" + httpPort : "off", USER));
        System.out.println("READY bolt://127.0.0.1:" + boltPort);
        System.out.flush();

        // Keep the JVM alive until a signal runs the shutdown hook.
        stopped.await();
    }

    private static void setInitialPassword(Path home, String password) throws IOException {
        Path conf = home.resolve("conf");
        Files.createDirectories(conf);
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        ExecutionContext ctx = new ExecutionContext(home, conf, quiet, System.err, new org.neo4j.io.fs.DefaultFileSystemAbstraction());
        int rc = new CommandLine(new SetInitialPasswordCommand(ctx)).execute(password);
        if (rc != 0) {
            throw new IllegalStateException("set-initial-password failed (exit " + rc + "); "
                    + "note the password must be at least 8 characters");
        }
        log("initial password set for user '" + USER + "'");
    }

    /** On an existing DBMS make the stored password match NEO4J_PASSWORD (it may have changed). */
    private static void syncPassword(DatabaseManagementService dbms, String password) {
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try {
            system.executeTransactionally(
                    "ALTER USER " + USER + " SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            log("password for user '" + USER + "' updated from NEO4J_PASSWORD");
        } catch (RuntimeException e) {
            String msg = String.valueOf(e.getMessage());
            if (msg.contains("Old password and new password cannot be the same")) {
                log("password for user '" + USER + "' unchanged");
            } else {
                throw e;
            }
        }
    }

    /*
     * pvgraph-password.sha256 remembers (salted SHA-256) which password this launcher last
     * configured, so a restart with the same NEO4J_PASSWORD can skip the slow ALTER USER.
     * If the password is changed by other means (e.g. ALTER CURRENT USER), delete this file.
     */
    private static void writePasswordMarker(Path marker, String password) throws IOException {
        byte[] salt = new byte[16];
        new java.security.SecureRandom().nextBytes(salt);
        String saltHex = java.util.HexFormat.of().formatHex(salt);
        Files.createDirectories(marker.getParent());
        Files.writeString(marker, saltHex + ":" + sha256Hex(saltHex, password) + "\n");
        try {
            Files.setPosixFilePermissions(marker, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // non-POSIX file system
        }
    }

    private static boolean passwordMarkerMatches(Path marker, String password) {
        try {
            String[] parts = Files.readString(marker).trim().split(":", 2);
            return parts.length == 2 && sha256Hex(parts[0], password).equals(parts[1]);
        } catch (IOException e) {
            return false;
        }
    }

    private static String sha256Hex(String saltHex, String password) {
        try {
            var md = java.security.MessageDigest.getInstance("SHA-256");
            md.update(saltHex.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            md.update(password.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void deleteRecursively(Path dir) {
        try (var paths = Files.walk(dir)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            log("could not delete " + dir + ": " + e);
        }
    }

    private static void waitForPort(int port, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
                return;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("bolt port " + port + " not accepting connections", e);
                }
                Thread.sleep(200);
            }
        }
    }

    private static String env(String name, String dflt) {
        String v = System.getenv(name);
        return (v == null || v.isEmpty()) ? dflt : v;
    }

    private static int intEnv(String name, int dflt) {
        return Integer.parseInt(env(name, Integer.toString(dflt)).trim());
    }

    private static void log(String msg) {
        System.out.println("[neo4j-launcher] " + msg);
        System.out.flush();
    }
}
