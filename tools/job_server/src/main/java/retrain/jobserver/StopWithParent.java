// Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
package retrain.jobserver;

import java.io.InputStream;
import java.lang.reflect.Method;
import java.util.Properties;

/**
 * Runs Beam's job server driver (Flink's or Spark's, named in job-server.properties) and stops the
 * whole JVM as soon as the process that started it is gone.
 *
 * <p>Beam's Python SDK starts the job server as a child process and stops it when the Python
 * process exits normally; a launcher killed with SIGKILL (or by the OOM killer) would leave it
 * running, with its embedded Flink or Spark cluster, for ever. Watching the parent makes that
 * impossible.
 */
public final class StopWithParent {
  private StopWithParent() {}

  public static void main(String[] args) throws Exception {
    Properties properties = new Properties();
    try (InputStream in = StopWithParent.class.getResourceAsStream("/job-server.properties")) {
      properties.load(in);
    }
    String driver = properties.getProperty("main");
    ProcessHandle.current()
        .parent()
        .ifPresent(
            parent ->
                parent
                    .onExit()
                    .thenRun(
                        () -> {
                          System.err.println(
                              "Job server: the process that started it ("
                                  + parent.pid()
                                  + ") is gone; stopping.");
                          Runtime.getRuntime().halt(143);
                        }));
    Method main = Class.forName(driver).getMethod("main", String[].class);
    main.invoke(null, (Object) args);
  }
}
