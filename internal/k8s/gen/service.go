package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// ConfigHashAnnotation on a service's pod template changes with its
// database credentials, so a new password rolls the pods that read it.
const ConfigHashAnnotation = "msctl.dev/config-hash"

// DBSecretName is the Secret holding one service's database credentials.
func DBSecretName(service string) string { return service + "-db" }

// DSN is the DATABASE_URL of a service inside the cluster: its own role
// and database, named after it, on the postgres Service.
func DSN(service, password string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", service, password, postgresName, PostgresPort, service)
}

func (g *generator) dbSecret(s ServiceSpec) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: typeSecret, ObjectMeta: g.meta(DBSecretName(s.Name), ComponentService),
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			"database": []byte(s.Name),
			"username": []byte(s.Name),
			"password": []byte(s.DatabasePassword),
			"url":      []byte(DSN(s.Name, s.DatabasePassword)),
		},
	}
}

// service returns the objects of one service: its secrets' Secret, its
// database provisioning Job, Deployment, Service and, when asked for,
// PodDisruptionBudget and HorizontalPodAutoscaler.
func (g *generator) service(s ServiceSpec) []Object {
	var objs []Object
	if sec := g.serviceSecrets(s); sec != nil {
		objs = append(objs, sec)
	}
	if s.Database {
		objs = append(objs, g.dbJob(s))
	}
	objs = append(objs, g.deployment(s), &corev1.Service{
		TypeMeta: typeService, ObjectMeta: g.meta(s.Name, ComponentService),
		Spec: corev1.ServiceSpec{
			Selector: g.selector(s.Name, ComponentService),
			Ports:    []corev1.ServicePort{servicePort("http", ServicePort)},
		},
	})
	minReplicas := s.Replicas
	if s.Autoscale != nil {
		minReplicas = s.Autoscale.Min
	}
	if minReplicas >= 2 {
		objs = append(objs, g.pdb(s.Name, ComponentService))
	}
	if a := s.Autoscale; a != nil {
		objs = append(objs, &autoscalingv2.HorizontalPodAutoscaler{
			TypeMeta: typeHPA, ObjectMeta: g.meta(s.Name, ComponentService),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: s.Name},
				MinReplicas:    ptr.To(int32(a.Min)),
				MaxReplicas:    int32(a.Max),
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   corev1.ResourceCPU,
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(a.CPU))},
					},
				}},
			},
		})
	}
	return objs
}

func (g *generator) deployment(s ServiceSpec) *appsv1.Deployment {
	grace := s.ShutdownTimeout
	if grace == 0 {
		grace = g.spec.ShutdownTimeout
	}
	if grace == 0 {
		grace = DefaultShutdownTimeout
	}
	c := corev1.Container{
		Name:            s.Name,
		Image:           s.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Ports:           []corev1.ContainerPort{port("http", ServicePort)},
		Env:             g.env(s, grace),
		// Startup covers migrations on a first start; liveness then only
		// restarts a process that stopped answering at all.
		StartupProbe:    httpProbe("/healthz", ServicePort, 1, 120),
		LivenessProbe:   httpProbe("/healthz", ServicePort, 10, 3),
		ReadinessProbe:  httpProbe(s.Health, ServicePort, 2, 2),
		Resources:       resources("50m", "64Mi", "1", "256Mi"),
		VolumeMounts:    []corev1.VolumeMount{tmpMount},
		SecurityContext: hardened(nonRootUID),
		// A deleted pod leaves its Service's endpoints while the kubelet
		// sends SIGTERM; kube-proxy drops it from the node's rules only
		// seconds later. Until then connections still arrive: keep
		// serving them before the shutdown begins.
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: int64(LeaveDelay.Seconds())}}},
	}
	pod := podSpec(nonRootUID, c)
	pod.Volumes = []corev1.Volume{tmpVolume}
	pod.TerminationGracePeriodSeconds = ptr.To(int64((LeaveDelay + grace + shutdownMargin).Seconds()))
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: g.labels(s.Name, ComponentService)}, Spec: pod}
	if s.Database {
		tmpl.Annotations = map[string]string{ConfigHashAnnotation: g.dbHash(s)}
		tmpl.Spec.InitContainers = []corev1.Container{g.waitDatabase(s)}
	}
	if h := secretsHash(s); h != "" {
		if tmpl.Annotations == nil {
			tmpl.Annotations = map[string]string{}
		}
		tmpl.Annotations[SecretsHashAnnotation] = h
	}
	d := &appsv1.Deployment{TypeMeta: typeDeployment, ObjectMeta: g.meta(s.Name, ComponentService), Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: g.selector(s.Name, ComponentService)},
		// A new pod must be ready before an old one goes: no gap in the
		// registry during a rollout.
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromInt32(1)),
		}},
		Template: tmpl,
	}}
	// Under an autoscaler the replica count is the autoscaler's: setting
	// it here would undo its decisions on every apply.
	if s.Autoscale == nil {
		d.Spec.Replicas = ptr.To(int32(s.Replicas))
	}
	return d
}

// env is the service environment of docs/ARCHITECTURE.md with in-cluster
// addresses: the pod's own name and IP through the downward API, infra by
// Service name, the database URL from the service's own Secret. The
// service's env: from msctl.yaml comes last and wins, as on the other
// runtimes; its secret values are read from its secrets' Secret.
func (g *generator) env(s ServiceSpec, shutdown time.Duration) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "SERVICE_NAME", Value: s.Name},
		fieldEnv("INSTANCE_ID", "metadata.name"),
		fieldEnv("POD_IP", "status.podIP"),
		{Name: "HTTP_ADDR", Value: "0.0.0.0:" + strconv.Itoa(ServicePort)},
		{Name: "ADVERTISE_ADDR", Value: "$(POD_IP):" + strconv.Itoa(ServicePort)},
		{Name: "ETCD_ENDPOINTS", Value: fmt.Sprintf("http://%s:%d", etcdName, EtcdPort)},
		{Name: "NATS_URL", Value: fmt.Sprintf("nats://%s:%d", natsName, NATSPort)},
		{Name: "SHUTDOWN_TIMEOUT", Value: shutdown.String()},
	}
	if s.Database {
		env = append(env, secretEnv("DATABASE_URL", DBSecretName(s.Name), "url"))
	}
	if g.spec.CollectorImage != "" {
		env = append(env, corev1.EnvVar{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: fmt.Sprintf("http://%s:%d", CollectorName, CollectorPort)})
	}
	if s.Public {
		env = append(env, corev1.EnvVar{Name: "GATEWAY_ROUTES", Value: g.spec.GatewayRoutes})
	}
	hidden := secretEnvKeys(s)
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		v := corev1.EnvVar{Name: k, Value: s.Env[k]}
		if slices.Contains(hidden, k) {
			v = secretEnv(k, SecretsName(s.Name), k)
		}
		if i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == k }); i >= 0 {
			env[i] = v
		} else {
			env = append(env, v)
		}
	}
	return env
}

// dbHash identifies a service's credentials and the Postgres image that
// provisions them, for the Job name and the pod template annotation.
func (g *generator) dbHash(s ServiceSpec) string {
	h := sha256.Sum256([]byte(s.Name + "\x00" + s.DatabasePassword + "\x00" + g.spec.Postgres.Image))
	return hex.EncodeToString(h[:])[:10]
}

// provisionSQL creates the service's role and database if missing and
// (re)sets the role's password, so running it again is harmless. psql's
// \gexec runs the CREATE only when the SELECT finds nothing.
const provisionSQL = `until pg_isready -q; do sleep 1; done
psql -v ON_ERROR_STOP=1 -X -v db="$DB_NAME" -v role="$DB_USER" -v pw="$DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT ALL ON DATABASE :"db" TO :"role";
SQL
`

// dbJob creates one service's database and role with the superuser's
// password. A Job rather than an init container of the service: the
// superuser's Secret then reaches only Postgres and this short-lived pod,
// never a long-running service. Its name carries the credentials' hash:
// a Job's template is immutable, and new credentials must run it again.
func (g *generator) dbJob(s ServiceSpec) *batchv1.Job {
	sec := DBSecretName(s.Name)
	c := corev1.Container{
		Name:            "provision",
		Image:           g.spec.Postgres.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-ec", provisionSQL},
		Env: []corev1.EnvVar{
			{Name: "HOME", Value: "/tmp"},
			{Name: "PGHOST", Value: postgresName},
			{Name: "PGPORT", Value: strconv.Itoa(PostgresPort)},
			{Name: "PGUSER", Value: "postgres"},
			{Name: "PGDATABASE", Value: "postgres"},
			secretEnv("PGPASSWORD", adminSecret, "password"),
			secretEnv("DB_NAME", sec, "database"),
			secretEnv("DB_USER", sec, "username"),
			secretEnv("DB_PASSWORD", sec, "password"),
		},
		Resources:       resources("10m", "32Mi", "200m", "128Mi"),
		VolumeMounts:    []corev1.VolumeMount{tmpMount},
		SecurityContext: hardened(nonRootUID),
	}
	pod := podSpec(nonRootUID, c)
	pod.Volumes = []corev1.Volume{tmpVolume}
	pod.RestartPolicy = corev1.RestartPolicyOnFailure
	name := s.Name + "-db-" + g.dbHash(s)
	meta := g.meta(name, ComponentDBInit)
	// The service's name label: its NetworkPolicy lets the Job reach
	// Postgres, and Postgres admits exactly the database services.
	meta.Labels[LabelName] = s.Name
	return &batchv1.Job{TypeMeta: typeJob, ObjectMeta: meta, Spec: batchv1.JobSpec{
		BackoffLimit: ptr.To[int32](20),
		// Finished Jobs go away; applying again re-creates one, harmlessly.
		TTLSecondsAfterFinished: ptr.To[int32](600),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: meta.Labels},
			Spec:       pod,
		},
	}}
}

// waitDatabase holds the service's start until its Job has created its
// database, using nothing but the service's own credentials.
func (g *generator) waitDatabase(s ServiceSpec) corev1.Container {
	return corev1.Container{
		Name:            "wait-database",
		Image:           g.spec.Postgres.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c",
			`until psql "$DATABASE_URL" -X -Atqc 'SELECT 1' >/dev/null 2>&1; do echo "waiting for database ` + s.Name + `"; sleep 2; done`},
		Env: []corev1.EnvVar{
			{Name: "HOME", Value: "/tmp"},
			secretEnv("DATABASE_URL", DBSecretName(s.Name), "url"),
		},
		Resources:       resources("10m", "32Mi", "200m", "128Mi"),
		VolumeMounts:    []corev1.VolumeMount{tmpMount},
		SecurityContext: hardened(nonRootUID),
	}
}

// pdb keeps all but one pod of a replicated component through voluntary
// disruptions (node drains): a 3-node cluster keeps its quorum.
func (g *generator) pdb(name, component string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{TypeMeta: typePDB, ObjectMeta: g.meta(name, component), Spec: policyv1.PodDisruptionBudgetSpec{
		MaxUnavailable: ptr.To(intstr.FromInt32(1)),
		Selector:       &metav1.LabelSelector{MatchLabels: g.selector(name, component)},
	}}
}
