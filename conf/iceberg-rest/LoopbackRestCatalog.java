// Runs Iceberg's REST catalog fixture (org.apache.iceberg.rest.RESTCatalogServer) bound to
// one host only. The fixture itself always listens on every interface; the local stack
// must bind 127.0.0.1. Launched as a single-file program:
//   java -cp '<fixture jars>/*' LoopbackRestCatalog.java
// Configuration is the fixture's own: CATALOG_* and REST_PORT environment variables,
// plus REST_HOST (default 127.0.0.1).
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServer;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class LoopbackRestCatalog {
  public static void main(String[] args) throws Exception {
    String host = System.getenv().getOrDefault("REST_HOST", "127.0.0.1");
    int port = Integer.parseInt(System.getenv().getOrDefault("REST_PORT", "8181"));

    // Reuse the fixture's own wiring (catalog from CATALOG_* env, adapter) by reflection.
    Constructor<RESTCatalogServer> serverConstructor = RESTCatalogServer.class.getDeclaredConstructor();
    serverConstructor.setAccessible(true);
    RESTCatalogServer fixture = serverConstructor.newInstance();
    Method initialize = RESTCatalogServer.class.getDeclaredMethod("initializeBackendCatalog");
    initialize.setAccessible(true);
    Object catalogContext = initialize.invoke(fixture);
    Class<?> adapterClass = Class.forName("org.apache.iceberg.rest.RESTServerCatalogAdapter");
    Constructor<?> adapterConstructor = adapterClass.getDeclaredConstructor(catalogContext.getClass());
    adapterConstructor.setAccessible(true);
    RESTCatalogAdapter adapter = (RESTCatalogAdapter) adapterConstructor.newInstance(catalogContext);

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(adapter)), "/*");
    context.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(host);
    connector.setPort(port);
    server.addConnector(connector);
    server.setHandler(context);
    server.start();
    System.out.println("Iceberg REST catalog listening on http://" + host + ":" + port);
    server.join();
  }
}
