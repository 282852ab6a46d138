// grpc.reflection.v1 built from the generated file descriptors, so grpcurl and similar tools
// work against herd with no .proto files at hand. Read-only: the index is built once.

import { type DescFile, toBinary } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import type {
  ServerReflection,
  ServerReflectionRequest,
  ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.ts";

type Response = Omit<ServerReflectionResponse, "$typeName" | "originalRequest" | "validHost">;

export function reflectionService(
  services: readonly { typeName: string; file: DescFile }[],
): ServiceImpl<typeof ServerReflection> {
  const files = new Map<string, DescFile>();
  const bySymbol = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const type of nestedTypes(file)) {
      bySymbol.set(type.typeName, file);
      if (type.kind === "service") {
        for (const m of type.methods) bySymbol.set(`${type.typeName}.${m.name}`, file);
      }
    }
    for (const dep of file.dependencies) visit(dep);
  };
  for (const s of services) visit(s.file);

  /** The file first, then everything it imports, each once. */
  function withDependencies(file: DescFile): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const add = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const dep of f.dependencies) add(dep);
    };
    add(file);
    return out;
  }

  const notFound = (what: string): Response => ({
    messageResponse: {
      case: "errorResponse",
      value: {
        $typeName: "grpc.reflection.v1.ErrorResponse",
        errorCode: Code.NotFound,
        errorMessage: `${what} not found`,
      },
    },
  });

  function answer(req: ServerReflectionRequest): Response {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          messageResponse: {
            case: "listServicesResponse",
            value: {
              $typeName: "grpc.reflection.v1.ListServiceResponse",
              service: services.map((s) => ({
                $typeName: "grpc.reflection.v1.ServiceResponse",
                name: s.typeName,
              })),
            },
          },
        };
      case "fileByFilename":
      case "fileContainingSymbol": {
        const file = r.case === "fileByFilename" ? files.get(r.value) : bySymbol.get(r.value);
        if (!file)
          return notFound(
            `${r.case === "fileByFilename" ? "file" : "symbol"} ${JSON.stringify(r.value.slice(0, 200))}`,
          );
        return {
          messageResponse: {
            case: "fileDescriptorResponse",
            value: {
              $typeName: "grpc.reflection.v1.FileDescriptorResponse",
              fileDescriptorProto: withDependencies(file),
            },
          },
        };
      }
      case "allExtensionNumbersOfType":
        if (!bySymbol.has(r.value))
          return notFound(`type ${JSON.stringify(r.value.slice(0, 200))}`);
        return {
          messageResponse: {
            case: "allExtensionNumbersResponse",
            value: {
              $typeName: "grpc.reflection.v1.ExtensionNumberResponse",
              baseTypeName: r.value,
              extensionNumber: [],
            },
          },
        };
      case "fileContainingExtension":
        return notFound("extension");
      default:
        return {
          messageResponse: {
            case: "errorResponse",
            value: {
              $typeName: "grpc.reflection.v1.ErrorResponse",
              errorCode: Code.InvalidArgument,
              errorMessage: "empty reflection request",
            },
          },
        };
    }
  }

  return {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield { ...answer(req), validHost: req.host, originalRequest: req };
      }
    },
  };
}
